import Foundation
import Testing
import TollgateRedis
import TollgateTestSupport

/// The live streams end to end: real `tollgate serve` processes on a real Redis, read by raw
/// SSE connections. Time bounds here only catch hangs.
@Suite("Event streams", .serialized)
struct EventStreamTests {
    /// Debits `count` times (`parallel` at a time) through `/v1/authorize`; returns the entry ids.
    static func debit(_ server: E2EServer, _ account: String, count: Int, parallel: Int = 8, prefix: String) async throws -> [String] {
        try await withThrowingTaskGroup(of: [String].self) { group in
            for lane in 0..<parallel {
                group.addTask {
                    var ids: [String] = []
                    for n in stride(from: lane, to: count, by: parallel) {
                        let decision = try await server.authorize([
                            "account": account, "request_id": "\(prefix)-\(n)", "usage": [["meter": "api_call", "quantity": 1]],
                        ])
                        if let id = decision["entry_id"]?.string { ids.append(id) }
                    }
                    return ids
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
    }

    /// Every ledger entry id of an account, oldest first.
    static func ledgerIDs(_ server: E2EServer, _ account: String) async throws -> [String] {
        let response = try await server.admin("GET", "/v1/accounts/\(E2EPath.segment(account))/ledger?limit=10000")
        try #require(response.status == 200, "\(response)")
        return (response.value["entries"]?.array ?? []).compactMap { $0["id"]?.string }.reversed()
    }

    static func changes(_ events: [SSEEvent]) -> [SSEEvent] { events.filter { $0.event == "change" } }

    @Test("one account's events arrive in ledger order under concurrent debits, each once")
    func orderUnderConcurrentDebits() async throws {
        try await E2EServer.with { server in
            try await server.price("api_call", "0.01")
            try await server.account("ord", credit: "100")
            let token = try await server.accountToken(for: "ord")
            let streams = try SSEStreams(port: server.port, path: "/v1/accounts/ord/events", token: token)
            defer { streams.close() }
            try await streams.waitUntil { $0.first?.event == "snapshot" }
            let snapshot = try #require(streams.events().first)
            #expect(snapshot["balance"] == "100" && snapshot["reset"] == nil && snapshot.object?["reset"] as? Bool == false)

            _ = try await Self.debit(server, "ord", count: 200, parallel: 16, prefix: "ord")
            let ledger = try await Self.ledgerIDs(server, "ord")
            try await streams.waitUntil { Self.changes($0).last?.id == ledger.last }
            let changes = Self.changes(streams.events())
            #expect(changes.map(\.id) == Array(ledger.dropFirst()))  // the first entry (the top-up) is in the snapshot
            // Each event's balance follows from the one before it.
            var balance = Decimal(string: "100")!
            for change in changes {
                balance += Decimal(string: change["amount"] ?? "x") ?? .nan
                #expect(Decimal(string: change["balance"] ?? "") == balance, "\(change.data)")
                #expect(change["id"] == change.id && change["entry_id"] == change.id && change["account"] == "ord")
            }
            #expect(balance == Decimal(string: "98"))
        }
    }

    @Test("resume by Last-Event-ID after a forced disconnect loses and doubles nothing; an unknown id gets a reset snapshot")
    func resumeAfterDisconnect() async throws {
        try await E2EServer.with { server in
            try await server.price("api_call", "0.01")
            try await server.account("res", credit: "100")
            let first = try SSEStreams(port: server.port, path: "/v1/accounts/res/events", token: E2ETokens.admin)
            defer { first.close() }
            try await first.waitUntil { $0.first?.event == "snapshot" }
            let debits = Task { try await Self.debit(server, "res", count: 120, parallel: 2, prefix: "res") }
            try await first.waitUntil { Self.changes($0).count >= 10 }
            first.drop(0)
            let seen = Self.changes(first.events())
            let resumeID = try #require(seen.last?.id)

            let second = try SSEStreams(port: server.port, path: "/v1/accounts/res/events", token: E2ETokens.admin, lastEventID: resumeID)
            defer { second.close() }
            _ = try await debits.value
            let ledger = try await Self.ledgerIDs(server, "res")
            try await second.waitUntil { Self.changes($0).last?.id == ledger.last }
            #expect(second.events().first?.event == "change", "a resumed stream starts with the next change, not a snapshot")
            let all = seen.map(\.id) + Self.changes(second.events()).map(\.id)
            #expect(all == Array(ledger.dropFirst()))

            // Beyond retention or not an entry of this account: a fresh snapshot marked reset.
            let stale = try SSEStreams(port: server.port, path: "/v1/accounts/res/events", token: E2ETokens.admin, lastEventID: "1-0")
            defer { stale.close() }
            try await stale.waitUntil { !$0.isEmpty }
            let reset = try #require(stale.events().first)
            #expect(reset.event == "snapshot" && reset.object?["reset"] as? Bool == true && reset.id == ledger.last)
        }
    }

    @Test("1,000 concurrent subscribers each receive every event")
    func thousandSubscribers() async throws {
        try await E2EServer.with { server in
            try await server.price("api_call", "0.01")
            try await server.account("many", credit: "100")
            let streams = try SSEStreams(port: server.port, path: "/v1/accounts/many/events", token: E2ETokens.admin, count: 1000)
            defer { streams.close() }
            try await streams.waitUntilAll(timeout: .seconds(120)) { $0.first?.event == "snapshot" }
            _ = try await Self.debit(server, "many", count: 50, parallel: 4, prefix: "many")
            let expected = Array(try await Self.ledgerIDs(server, "many").dropFirst())
            try await streams.waitUntilAll(timeout: .seconds(120)) { Self.changes($0).count >= expected.count }
            for index in 0..<streams.count {
                #expect(Self.changes(streams.events(index)).map(\.id) == expected, "subscriber \(index)")
            }
        }
    }

    @Test("a stuck subscriber is cut off as lagging and delays neither decisions nor other subscribers",
          .enabled(if: !TestRedis.isCluster, "floods 40,000 PUBLISHes, which a cluster relays to all six nodes: too slow on two cores"))
    func stuckSubscriber() async throws {
        // A buffer of 256: room for all of the calm account's 200 events (and a gap and a
        // heartbeat), so only the stuck one can overflow its own, whatever the machine's load.
        // With 64, a calm subscriber on a busy two-core machine fell 64 of its own events
        // behind and was cut, as the rule says it must be.
        try await E2EServer.with(arguments: ["--events-buffer", "256"]) { server in
            try await server.price("api_call", "0.01")
            try await server.account("stuck")
            try await server.account("calm", credit: "100")
            // A subscriber that never reads, with a tiny receive buffer.
            let stuck = try SSEStreams(port: server.port, path: "/v1/accounts/stuck/events", token: E2ETokens.admin,
                                       paused: true, receiveBufferSize: 4096)
            defer { stuck.close() }
            let calm = try SSEStreams(port: server.port, path: "/v1/accounts/calm/events", token: E2ETokens.admin)
            defer { calm.close() }
            try await calm.waitUntil { $0.first?.event == "snapshot" }

            // Flood the stuck account's stream (more than every socket and NIO buffer holds)
            // with well-formed events straight onto the channel, while decisions go on.
            let redis = server.testRedis.client(connections: 2)
            defer { redis.close() }
            let flood = Task {
                let base = Date().timeIntervalSince1970 * 1000 + 60_000
                for batch in 0..<80 {
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for n in 0..<500 {
                            let ms = Int64(base) + Int64(batch)
                            let message = "\(ms)-\(n)|debit|-1|100|0|\(ms)|tg:{a:stuck}:acct"
                            group.addTask { _ = try await redis.send(RedisCommand(["PUBLISH", "tg:events", message])) }
                        }
                        try await group.waitForAll()
                    }
                }
            }
            let ids = try await Self.debit(server, "calm", count: 200, parallel: 8, prefix: "calm")
            #expect(ids.count == 200)
            try await flood.value
            let ledger = try await Self.ledgerIDs(server, "calm")
            try await calm.waitUntil(timeout: .seconds(120)) { Self.changes($0).last?.id == ledger.last }
            #expect(Self.changes(calm.events()).map(\.id) == Array(ledger.dropFirst()))
            #expect(!calm.events().contains { $0.event == "lagged" })

            // The stuck one was told and disconnected: once read, its stream ends well before
            // 40,000 events, with a `lagged` message naming where to resume.
            stuck.resume()
            try await stuck.waitUntilClosed(timeout: .seconds(60))
            #expect(Self.changes(stuck.events()).count < 40_000)
            #expect(stuck.events().last?.event == "lagged" && stuck.events().last?["id"] == Self.changes(stuck.events()).last?.id)
            let metrics = try await server.http.send("GET", "/metrics")
            #expect(metrics.text.contains("tollgate_event_subscribers_lagged_total 1"), "\(metrics.text.suffix(1500))")
        }
    }

    @Test("a change made through one server reaches subscribers of another on the same Redis; the firehose filters")
    func twoServersShareEvents() async throws {
        let redis = try await TestRedis.start()
        defer { redis.single?.stop() }
        let one = try await ServerProcess.start(redisArguments: redis.serveArguments, adminToken: E2ETokens.admin, serviceToken: E2ETokens.service,
                                                arguments: ["--log-level", "warning", "--redis-timeout", "10s"] + E2ETokens.couponSecretArguments)
        let two = try await ServerProcess.start(redisArguments: redis.serveArguments, adminToken: E2ETokens.admin, serviceToken: E2ETokens.service,
                                                arguments: ["--log-level", "warning", "--redis-timeout", "10s"] + E2ETokens.couponSecretArguments)
        defer { Task { _ = try? await one.stop(); _ = try? await two.stop() } }
        let a = E2EClient(http: one.http), b = E2EClient(http: two.http)
        _ = try await a.admin("PUT", "/v1/prices/api_call", ["price": "0.5"])
        for id in ["team-a", "team-b", "other"] {
            _ = try await a.admin("POST", "/v1/accounts", ["id": id])
            _ = try await a.admin("POST", "/v1/accounts/\(id)/credits", ["amount": "10", "request_id": "c-\(id)"])
        }
        let stream = try SSEStreams(port: two.port, path: "/v1/accounts/team-a/events", token: E2ETokens.admin)
        defer { stream.close() }
        let firehose = try SSEStreams(port: two.port, path: "/v1/events?account_prefix=team-&kind=debit", token: E2ETokens.admin)
        defer { firehose.close() }
        try await stream.waitUntil { $0.first?.event == "snapshot" }
        try await firehose.waitUntil { $0.first?.event == "ready" }

        for id in ["team-a", "other", "team-b"] {
            let response = try await a.service("POST", "/v1/authorize", ["account": id, "request_id": "d-\(id)", "usage": [["meter": "api_call", "quantity": 1]]])
            #expect(response.status == 200)
        }
        _ = try await a.admin("POST", "/v1/accounts/team-b/credits", ["amount": "1", "request_id": "c2"])
        try await stream.waitUntil { Self.changes($0).count == 1 }
        #expect(Self.changes(stream.events()).first?["balance"] == "9.5")
        try await firehose.waitUntil { Self.changes($0).count == 2 }
        _ = try await b.admin("GET", "/healthz")
        let accounts = Self.changes(firehose.events()).map { $0["account"] ?? "" }
        // On a cluster, events of accounts on different primaries reach a subscriber in either
        // order (each primary relays its own); one account's events keep their order.
        #expect((TestRedis.isCluster ? accounts.sorted() : accounts) == ["team-a", "team-b"])
        #expect(Self.changes(firehose.events()).allSatisfy { $0["kind"] == "debit" })
    }

    @Test("a low-balance alert fires once per crossing and re-arms above the threshold")
    func alertOncePerCrossing() async throws {
        try await E2EServer.with { server in
            try await server.price("api_call", "1")
            try await server.account("low", credit: "10")
            let set = try await server.admin("PUT", "/v1/accounts/low/alerts", ["low_balance": "5"])
            #expect(set.status == 200 && set.value == ["low_balance_alert": ["threshold": "5", "armed": true]])
            let streams = try SSEStreams(port: server.port, path: "/v1/accounts/low/events", token: E2ETokens.admin)
            defer { streams.close() }
            try await streams.waitUntil { $0.first?.event == "snapshot" }
            func spend(_ n: Int, _ tag: String) async throws {
                for index in 0..<n {
                    _ = try await server.authorize(["account": "low", "request_id": "\(tag)-\(index)", "usage": [["meter": "api_call", "quantity": 1]]])
                }
            }
            // Every crossing is followed by more debits below the threshold: those must not alert again.
            try await spend(8, "a")  // 10 → 2: crosses below 5 once (at 4), then 3 and 2 stay below
            _ = try await server.admin("POST", "/v1/accounts/low/credits", ["amount": "12", "request_id": "up"])  // 14: re-armed
            try await spend(12, "b")  // 14 → 2: crosses again (at 4), then 3 and 2 stay below
            let ledger = try await Self.ledgerIDs(server, "low")
            try await streams.waitUntil { Self.changes($0).last?.id == ledger.last }
            let events = streams.events()
            let alerts = events.filter { $0.event == "alert" }
            #expect(alerts.count == 2)
            for alert in alerts {
                #expect(alert["threshold"] == "5" && alert["available"] == "4")
                // Right after the change that crossed, naming it.
                let index = try #require(events.firstIndex(of: alert))
                #expect(events[index - 1].event == "change" && events[index - 1].id == alert["entry_id"])
            }
        }
    }

    @Test("the WebSocket stream sends the same snapshot and changes")
    func webSocketStream() async throws {
        try await E2EServer.with { server in
            try await server.price("api_call", "0.25")
            try await server.account("ws", credit: "3")
            let token = try await server.accountToken(for: "ws")
            let received = try await WebSocketProbe.collect(port: server.port, path: "/v1/accounts/ws/ws", token: token, count: 2) {
                _ = try await server.authorize(["account": "ws", "request_id": "w1", "usage": [["meter": "api_call", "quantity": 1]]])
            }
            #expect(received.first?["type"] == "snapshot" && received.first?["balance"] == "3")
            #expect(received.last?["type"] == "change" && received.last?["balance"] == "2.75" && received.last?["kind"] == "debit")
            // A plain GET is refused with a JSON error; a stranger's token never gets in.
            let plain = try await server.admin("GET", "/v1/accounts/ws/ws")
            #expect(plain.status == 400 && plain.errorCode == "websocket_required")
            let other = try await server.request("GET", "/v1/accounts/ws/events", token: "nope")
            #expect(other.status == 401)
        }
    }
}
