import Foundation
import Testing
import TollgateRedis
import TollgateTestSupport

@Suite("Connection errors, timeouts, AUTH and SELECT")
struct ConnectionErrorTests {
    static let refusedAddresses: [String] = [
        "unix:///nonexistent-tollgate-dir/redis.sock",
        "unix://\(FileManager.default.temporaryDirectory.path)/tollgate-no-such-\(UUID().uuidString).sock",
        "tcp-free-port",
    ]

    @Test("nothing listening gives connectionRefused, quickly", arguments: refusedAddresses)
    func connectionRefused(_ text: String) async throws {
        let address = text == "tcp-free-port"
            ? RedisAddress(endpoint: .tcp(host: "127.0.0.1", port: try RedisServer.freePort()))
            : try RedisAddress(parsing: text)
        let client = makeClient(address, connectTimeout: .seconds(2), reconnectBackoff: .milliseconds(200))
        defer { client.close() }
        for attempt in 0..<3 {
            let (result, elapsed) = await timed { () async throws(RedisError) in try await client.ping() }
            guard case .failure(let error) = result else {
                Issue.record("attempt \(attempt): PING to \(address) succeeded")
                continue
            }
            #expect(error.code == .connectionRefused, "attempt \(attempt): \(error)")
            #expect(error.isConnectivity)
            #expect(elapsed < .seconds(20), "attempt \(attempt) took \(elapsed): it hung")  // a hang check, not a speed claim
        }
        #expect(client.outstandingCommands == 0)
    }

    @Test func blockingCommandPastTheTimeoutGivesTimeoutAndTheConnectionIsReplaced() async throws {
        let server = try await RedisServer()
        defer { server.stop() }
        let client = server.client(connections: 1, commandTimeout: .milliseconds(200))
        defer { client.close() }
        let observer = server.client(connections: 1)
        defer { observer.close() }
        try await client.ping()

        let (result, elapsed) = await timed { () async throws(RedisError) in try await client.send("BLPOP", "never-filled", "0") }
        guard case .failure(let error) = result else {
            Issue.record("BLPOP on an empty list answered \(result)")
            return
        }
        #expect(error.code == .timeout, "\(error)")
        #expect(error.isConnectivity)
        #expect(elapsed >= .milliseconds(150), "timed out after only \(elapsed)")
        #expect(elapsed < .seconds(20), "timed out after \(elapsed): it hung")  // a hang check, not a speed claim

        // The same client works again, every reply going to its own caller.
        for index in 0..<8 {
            #expect(try await client.send("SET", "k\(index)", "value-\(index)") == .simpleString("OK"))
            #expect(try await client.send("GET", "k\(index)") == .bulkString(utf8("value-\(index)")))
        }
        #expect(try await client.send("INCR", "counter") == .integer(1))
        #expect(client.outstandingCommands == 0)

        // The timed-out connection was dropped, so the server no longer blocks a client on BLPOP
        // (and a later LPUSH cannot be swallowed by it).
        // Generous: on a loaded machine the dropped socket's close can take a while to be seen.
        let released = await eventually(within: .seconds(20)) {
            let info = (try? await observer.send("INFO", "clients"))?.string ?? ""
            return info.contains("blocked_clients:0")
        }
        #expect(released, "the server still has a client blocked on BLPOP")
        #expect(try await observer.send("LPUSH", "never-filled", "x") == .integer(1))
        #expect(try await observer.send("LLEN", "never-filled") == .integer(1))
    }

    @Test func slowServerGivesTimeoutAndNoLateReplyReachesALaterCaller() async throws {
        let server = try await RedisServer(extraArguments: ["--enable-debug-command", "yes"])
        defer { server.stop() }
        let client = server.client(connections: 1, commandTimeout: .milliseconds(200))
        defer { client.close() }
        try await client.ping()

        let (result, elapsed) = await timed { () async throws(RedisError) in try await client.send("DEBUG", "SLEEP", "0.6") }
        guard case .failure(let error) = result else {
            Issue.record("DEBUG SLEEP 0.6 answered \(result) within a 200 ms timeout")
            return
        }
        // `.timeout` (rather than DEBUG's `+OK`) shows the client gave up before the reply came.
        #expect(error.code == .timeout, "\(error)")
        #expect(elapsed >= .milliseconds(150), "timed out after only \(elapsed)")

        // Let the server finish sleeping: it then writes DEBUG's late `+OK`. Had the connection
        // been kept, that `+OK` would answer the next command and every reply would shift by one.
        try await Task.sleep(for: .milliseconds(600))
        for index in 0..<6 {
            #expect(try await client.send("SET", "key-\(index)", "late-\(index)") == .simpleString("OK"))
            #expect(try await client.send("GET", "key-\(index)") == .bulkString(utf8("late-\(index)")))
        }
        #expect(try await client.send("DBSIZE") == .integer(6))
    }

    @Test func callersPipelinedBehindATimeoutGetAnErrorOrTheirOwnReply() async throws {
        let server = try await RedisServer()
        defer { server.stop() }
        let client = server.client(connections: 1, commandTimeout: .milliseconds(300))
        defer { client.close() }
        try await client.ping()

        let outcomes = await withTaskGroup(of: (Int, Result<RESPValue, RedisError>).self) { group in
            group.addTask {
                await (-1, timed { () async throws(RedisError) in try await client.send("BLPOP", "never-filled", "0") }.0)
            }
            for index in 0..<40 {
                group.addTask {
                    try? await Task.sleep(for: .milliseconds(index % 4 == 0 ? 0 : 20 * (index % 8)))
                    let result = await timed { () async throws(RedisError) in
                        // SET ... GET answers the previous value: null, as each key is new.
                        let set = try await client.send("SET", "k\(index)", "v\(index)", "GET")
                        let get = try await client.send("GET", "k\(index)")
                        return RESPValue.array([set, get])
                    }.0
                    return (index, result)
                }
            }
            var all: [(Int, Result<RESPValue, RedisError>)] = []
            for await outcome in group { all.append(outcome) }
            return all
        }
        var answered = 0
        for (index, result) in outcomes where index >= 0 {
            switch result {
            case .success(let reply):
                #expect(reply == .array([.null, .bulkString(utf8("v\(index)"))]), "caller \(index) got \(reply)")
                answered += 1
            case .failure(let error):
                #expect(error.isConnectivity, "caller \(index): \(error)")
            }
        }
        // Callers queued behind the blocked BLPOP are answered on a fresh connection.
        #expect(answered > 0)
        let blpop = try #require(outcomes.first { $0.0 == -1 })
        switch blpop.1 {
        case .success(let reply): Issue.record("BLPOP on an empty list answered \(reply)")
        case .failure(let error): #expect(error.code == .timeout, "\(error)")
        }
        // After the timeout the client recovers and every key written so far reads back right.
        for index in 0..<40 {
            let reply = try await client.send("GET", "k\(index)")
            #expect(reply == .null || reply == .bulkString(utf8("v\(index)")), "k\(index) holds \(reply)")
        }
        #expect(client.outstandingCommands == 0)
    }

    static let password = "s3cret pass:word@/"

    @Test func authWithPassword() async throws {
        let server = try await RedisServer(tcp: true, extraArguments: ["--requirepass", Self.password])
        defer { server.stop() }
        let port = try #require(server.port)
        let encoded = try #require(Self.password.addingPercentEncoding(withAllowedCharacters: .alphanumerics))

        // No password: the connection is made, commands are refused by the server.
        let anonymous = server.client(connections: 1)
        defer { anonymous.close() }
        let refused = await redisError { () async throws(RedisError) in try await anonymous.ping() }
        #expect(refused?.code == .serverError)
        #expect(refused?.message.hasPrefix("NOAUTH") == true, "\(String(describing: refused))")

        // A wrong password fails the connect, without showing the password.
        let wrong = makeClient(try RedisAddress(parsing: "redis://:wrong-guess@127.0.0.1:\(port)"))
        defer { wrong.close() }
        let wrongError = await redisError { () async throws(RedisError) in try await wrong.ping() }
        #expect(wrongError?.code == .connectionRefused, "\(String(describing: wrongError))")
        #expect(wrongError?.message.contains("AUTH") == true)
        #expect(wrongError?.message.contains("wrong-guess") == false)

        // The right password, over TCP and over the unix socket.
        for text in ["redis://:\(encoded)@127.0.0.1:\(port)", "unix://\(server.socketPath)?password=\(encoded)"] {
            let address = try RedisAddress(parsing: text)
            #expect(address.password == Self.password)
            let client = makeClient(address, connections: 2)
            defer { client.close() }
            try await client.ping()
            #expect(try await client.send("SET", "authed", text) == .simpleString("OK"))
            #expect(try await client.send("GET", "authed") == .bulkString(utf8(text)))
            #expect(try await client.send("ACL", "WHOAMI") == .bulkString(utf8("default")))
        }
    }

    @Test func authWithACLUser() async throws {
        let server = try await RedisServer(tcp: true)
        defer { server.stop() }
        let port = try #require(server.port)
        let admin = server.client(connections: 1)
        defer { admin.close() }
        try await admin.send("ACL", "SETUSER", "alice", "on", ">alice-pw", "~app:*", "+@all")

        let alice = makeClient(try RedisAddress(parsing: "redis://alice:alice-pw@127.0.0.1:\(port)"))
        defer { alice.close() }
        #expect(try await alice.send("ACL", "WHOAMI") == .bulkString(utf8("alice")))
        #expect(try await alice.send("SET", "app:x", "1") == .simpleString("OK"))
        let denied = await redisError { () async throws(RedisError) in try await alice.send("SET", "other:x", "1") }
        #expect(denied?.code == .serverError)
        #expect(denied?.message.hasPrefix("NOPERM") == true, "\(String(describing: denied))")

        let impostor = makeClient(try RedisAddress(parsing: "redis://alice:not-her-pw@127.0.0.1:\(port)"))
        defer { impostor.close() }
        let error = await redisError { () async throws(RedisError) in try await impostor.ping() }
        #expect(error?.code == .connectionRefused)
        #expect(error?.message.contains("not-her-pw") == false)
    }

    @Test func selectsTheDatabaseFromTheAddress() async throws {
        let server = try await RedisServer(tcp: true)
        defer { server.stop() }
        let port = try #require(server.port)
        let db5 = makeClient(try RedisAddress(parsing: "redis://127.0.0.1:\(port)/5"), connections: 3)
        defer { db5.close() }
        let db5unix = makeClient(try RedisAddress(parsing: "unix://\(server.socketPath)?db=5"))
        defer { db5unix.close() }
        let db0 = server.client(connections: 1)
        defer { db0.close() }

        // Several concurrent writes, so more than one pooled connection is used; all must land in db 5.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<20 {
                group.addTask { try await db5.send("SET", "in5:\(index)", "five-\(index)") }
            }
            try await group.waitForAll()
        }
        #expect(try await db5.send("DBSIZE") == .integer(20))
        #expect(try await db0.send("DBSIZE") == .integer(0))
        #expect(try await db0.send("GET", "in5:3") == .null)
        #expect(try await db5unix.send("GET", "in5:3") == .bulkString(utf8("five-3")))
        #expect(try await db0.send("INFO", "keyspace").string?.contains("db5:keys=20") == true)
        let clientInfo = try await db5.send("CLIENT", "INFO").string ?? ""
        #expect(clientInfo.contains(" db=5 "), "\(clientInfo)")
    }

    @Test func selectingAMissingDatabaseFailsTheConnect() async throws {
        let server = try await RedisServer()
        defer { server.stop() }
        let client = makeClient(try RedisAddress(parsing: "unix://\(server.socketPath)?db=99"))
        defer { client.close() }
        let error = await redisError { () async throws(RedisError) in try await client.ping() }
        #expect(error?.code == .connectionRefused, "\(String(describing: error))")
        #expect(error?.message.contains("SELECT") == true)
    }
}
