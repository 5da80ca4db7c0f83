import Foundation
import Testing
import TollgateRedis
import TollgateTestSupport

/// The streams' limits and failure paths: stream caps, disconnects freeing everything at once,
/// losing the Redis subscription, and `serve`'s checks of the stream settings.
@Suite("Event stream limits and failures", .serialized)
struct EventStreamResilienceTests {
    /// The `tollgate_event_subscribers` gauge of a server.
    static func subscribers(_ server: E2EServer) async throws -> Int? {
        let metrics = try await server.http.send("GET", "/metrics")
        let line = metrics.text.split(separator: "\n").first { $0.hasPrefix("tollgate_event_subscribers ") }
        return line.flatMap { Double($0.split(separator: " ").last ?? "") }.map { Int($0) }
    }

    /// Polls `condition` until it holds; false after `timeout`.
    static func eventually(_ timeout: Duration, _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return try await condition()
    }

    @Test("streams are capped per account and per server with a JSON 429; a disconnect frees its slot and subscription at once")
    func streamCaps() async throws {
        // A heartbeat far beyond the test's bounds: a disconnect must be noticed without a write.
        try await E2EServer.with(arguments: ["--events-max-streams", "40", "--events-max-streams-per-account", "32",
                                             "--events-heartbeat", "10m"]) { server in
            try await server.account("capped", credit: "10")
            let token = try await server.accountToken(for: "capped")
            let path = "/v1/accounts/capped/events"
            let own = try SSEStreams(port: server.port, path: path, token: token, count: 32)
            defer { own.close() }
            try await own.waitUntilAll { $0.first?.event == "snapshot" }

            // The 33rd stream of the account's tokens (a second token shares the account's cap).
            let other = try await server.accountToken(for: "capped")
            for refusedToken in [token, other] {
                let refused = try await server.request("GET", path, token: refusedToken)
                #expect(refused.status == 429 && refused.errorCode == "too_many_streams", "\(refused)")
            }
            // The admin is held only to the server's cap: 8 more make 40, the 41st is refused.
            let admin = try SSEStreams(port: server.port, path: path, token: E2ETokens.admin, count: 8)
            defer { admin.close() }
            try await admin.waitUntilAll { $0.first?.event == "snapshot" }
            let full = try await server.admin("GET", "/v1/events")
            #expect(full.status == 429 && full.errorCode == "too_many_streams", "\(full)")
            #expect(try await Self.subscribers(server) == 40)

            // A client that goes away is noticed at once (not at the next heartbeat, 10 minutes
            // off): its subscription is gone and its slot free within a moment.
            own.drop(0)
            admin.drop(0)
            #expect(try await Self.eventually(.seconds(5)) { try await Self.subscribers(server) == 38 })
            let again = try SSEStreams(port: server.port, path: path, token: token)
            defer { again.close() }
            try await again.waitUntil { $0.first?.event == "snapshot" }
            #expect(again.status() == 200)
            let firehose = try SSEStreams(port: server.port, path: "/v1/events", token: E2ETokens.admin)
            defer { firehose.close() }
            try await firehose.waitUntil { $0.first?.event == "ready" }
            // Full again, for the account and for the server.
            #expect(try await server.request("GET", path, token: other).status == 429)
            #expect(try await server.admin("GET", "/v1/events").status == 429)
        }
    }

    @Test("losing the server's Redis subscription loses and doubles nothing: streams catch up from the ledger",
          .enabled(if: !TestRedis.isCluster, "kills the subscriber connection on the one Redis"))
    func redisSubscriptionLost() async throws {
        try await E2EServer.with { server in
            try await server.price("api_call", "0.01")
            try await server.account("cut", credit: "100")
            let stream = try SSEStreams(port: server.port, path: "/v1/accounts/cut/events", token: E2ETokens.admin)
            defer { stream.close() }
            let firehose = try SSEStreams(port: server.port, path: "/v1/events", token: E2ETokens.admin)
            defer { firehose.close() }
            try await stream.waitUntil { $0.first?.event == "snapshot" }
            try await firehose.waitUntil { $0.first?.event == "ready" }
            _ = try await EventStreamTests.debit(server, "cut", count: 20, parallel: 4, prefix: "before")
            let redis = server.redis.client(connections: 1)
            defer { redis.close() }
            // Debits go on while the subscription is cut and comes back.
            let debits = Task { try await EventStreamTests.debit(server, "cut", count: 150, parallel: 4, prefix: "during") }
            try await Task.sleep(for: .milliseconds(20))
            let killed = try await redis.send(RedisCommand(["CLIENT", "KILL", "TYPE", "pubsub"]))
            #expect(killed.int64.map { $0 >= 1 } == true, "\(killed)")
            _ = try await debits.value
            _ = try await EventStreamTests.debit(server, "cut", count: 10, parallel: 2, prefix: "after")

            let ledger = try await EventStreamTests.ledgerIDs(server, "cut")
            try await stream.waitUntil { EventStreamTests.changes($0).last?.id == ledger.last }
            #expect(EventStreamTests.changes(stream.events()).map(\.id) == Array(ledger.dropFirst()))
            // The subscription really was lost (the firehose, which cannot replay, is told).
            try await firehose.waitUntil { $0.contains { $0.event == "gap" } }
        }
    }

    @Test("serve refuses heartbeats under 1s and retention under 1m, by flag or variable, with exit 2",
          arguments: [
            (["--events-heartbeat", "0s"], [String: String]()),
            (["--events-heartbeat", "500ms"], [:]),
            (["--events-retention", "30s"], [:]),
            ([], ["TOLLGATE_EVENTS_HEARTBEAT": "0s"]),
            ([], ["TOLLGATE_EVENTS_RETENTION": "59s"]),
            (["--events-max-streams", "0"], [:]),
          ])
    func settingsChecked(_ arguments: [String], _ environment: [String: String]) async throws {
        let directory = ServerProcess.temporaryDirectory()
        // An unreachable Redis: were the settings not checked first, serve would fail later with exit 1.
        let result = try await CommandRunner.run(
            CommandRunner.product("tollgate"),
            ["serve", "--port", "0", "--data-dir", directory.path, "--redis", "unix:///nonexistent/redis.sock"] + arguments,
            environment: environment)
        #expect(result.status == 2, "\(result.stderr)")
        #expect(result.stderr.contains("events-"), "\(result.stderr)")
    }
}
