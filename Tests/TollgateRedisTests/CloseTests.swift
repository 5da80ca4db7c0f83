import Testing
import TollgateRedis
import TollgateTestSupport

@Suite("Closing a client")
struct CloseTests {
    @Test func sendsAfterCloseFailWithClientClosed() async throws {
        let server = try await RedisServer()
        defer { server.stop() }
        let client = server.client(connections: 3)
        try await client.send("SET", "k", "v")
        client.close()
        for attempt in 0..<5 {
            let (result, elapsed) = await timed { () async throws(RedisError) in try await client.send("GET", "k") }
            switch result {
            case .success(let reply):
                Issue.record("attempt \(attempt): a closed client answered \(reply)")
            case .failure(let error):
                #expect(error.code == .clientClosed, "\(error)")
                #expect(!error.isConnectivity)
            }
            #expect(elapsed < .seconds(20), "it hung")  // a hang check, not a speed claim
        }
        let pingError = await redisError { () async throws(RedisError) in try await client.ping() }
        #expect(pingError?.code == .clientClosed)
        let rawError = await redisError { () async throws(RedisError) in try await client.sendReturningErrors(RedisCommand("PING")) }
        #expect(rawError?.code == .clientClosed)
        #expect(client.outstandingCommands == 0)
        client.close()  // closing twice is harmless
        #expect(await redisError { () async throws(RedisError) in try await client.send("PING") }?.code == .clientClosed)
    }

    @Test func closingANeverUsedClient() async throws {
        let server = try await RedisServer()
        defer { server.stop() }
        let client = server.client()
        client.close()
        let error = await redisError { () async throws(RedisError) in try await client.ping() }
        #expect(error?.code == .clientClosed)
    }

    @Test func commandsAlreadySentAreAnsweredAfterClose() async throws {
        let server = try await RedisServer()
        defer { server.stop() }
        // Long timeouts: on a loaded machine the RPUSH below may come seconds later.
        let client = server.client(connections: 1, commandTimeout: .seconds(60))
        let observer = server.client(connections: 1)
        defer { observer.close() }
        try await client.ping()

        // A long BLPOP timeout: on a loaded machine the RPUSH below may come seconds later.
        async let blocked = timed { () async throws(RedisError) in try await client.send("BLPOP", "queue", "60") }
        // Wait until the server has the BLPOP, then close while it is in flight.
        let inFlight = await eventually {
            ((try? await observer.send("INFO", "clients"))?.string ?? "").contains("blocked_clients:1")
        }
        #expect(inFlight)
        client.close()
        #expect(await redisError { () async throws(RedisError) in try await client.send("PING") }?.code == .clientClosed)
        try await observer.send("RPUSH", "queue", "item")
        let (result, _) = await blocked
        #expect((try? result.get()) == .array([.bulkString(utf8("queue")), .bulkString(utf8("item"))]), "\(result)")
        #expect(client.outstandingCommands == 0)
    }
}
