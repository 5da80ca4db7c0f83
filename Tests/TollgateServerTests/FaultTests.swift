import Foundation
import Synchronization
import Testing
import TollgateTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Faults with real processes (docs/RELIABILITY.md): Redis killed, paused, `tollgate serve`
/// killed, fail-open journal replays. No timed assertions beyond generous hang bounds; the
/// latencies seen are printed as figures.
@Suite("reliability: faults with real processes", .serialized, .enabled(if: !TestRedis.isCluster, "kills, pauses and restarts the one Redis"))
struct FaultTests {
    /// Every entry of an account's ledger, oldest first, through the admin API.
    static func ledger(_ s: E2EServer, _ account: String) async throws -> [JSONValue] {
        var entries: [JSONValue] = []
        var cursor: String?
        repeat {
            let path = "/v1/accounts/\(account)/ledger?limit=500" + (cursor.map { "&cursor=\($0)" } ?? "")
            let page = try await s.admin("GET", path)
            #expect(page.status == 200, "\(page)")
            entries += page.value["entries"]?.array ?? []
            cursor = page.value["next_cursor"]?.string
        } while cursor != nil
        return entries.reversed()
    }

    /// Net micro-credits per request id over a ledger.
    static func netByRequest(_ entries: [JSONValue]) -> [String: Int64] {
        var net: [String: Int64] = [:]
        for entry in entries {
            guard let id = entry["request_id"]?.string, let amount = entry["amount"]?.string else { continue }
            net[id, default: 0] += micros(amount)
        }
        return net
    }

    static func micros(_ text: String) -> Int64 {
        let negative = text.hasPrefix("-")
        let digits = negative ? String(text.dropFirst()) : text
        let parts = digits.split(separator: ".", maxSplits: 1).map(String.init)
        let whole = Int64(parts[0]) ?? 0
        let fraction = parts.count > 1 ? Int64((parts[1] + "000000").prefix(6)) ?? 0 : 0
        return (negative ? -1 : 1) * (whole * 1_000_000 + fraction)
    }

    /// Waits until `/readyz` is ready with nothing left to void or replay.
    static func settled(_ s: E2EServer, within bound: Duration = .seconds(20)) async throws {
        let deadline = ContinuousClock.now + bound
        while ContinuousClock.now < deadline {
            let ready = try await s.http.json("GET", "/readyz")
            if ready.status == 200, ready.value == ["status": "ready"] { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("the server did not settle within \(bound): \(try await s.http.json("GET", "/readyz"))")
    }

    /// The decisions the server has allowed so far, by its own `/metrics`.
    static func decisionsServed(_ s: E2EServer) async throws -> Int {
        let metrics = try await s.http.send("GET", "/metrics")
        return metrics.text.split(whereSeparator: \.isNewline).reduce(0) { sum, line in
            guard line.hasPrefix("tollgate_decisions_total{"), line.contains(#"outcome="allowed""#),
                  let value = line.split(separator: " ").last, let count = Double(value) else { return sum }
            return sum + Int(count)
        }
    }

    static func expectAuditClean(_ s: E2EServer, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let audit = try await s.admin("GET", "/v1/audit")
        #expect(audit.status == 200 && audit.value["clean"] == true, "\(audit)", sourceLocation: sourceLocation)
    }

    @Test("Redis SIGSTOPped for 2 s: every decision is answered (allowed or 503 engine_unavailable), none answered 503 is charged, traffic recovers after SIGCONT")
    func redisPaused() async throws {
        try await E2EServer.with(arguments: ["--redis-timeout", "50ms"]) { s in
            #expect(try await s.admin("POST", "/v1/accounts", ["id": "probe"]).status == 201)
            #expect(try await s.admin("POST", "/v1/accounts/probe/credits", ["amount": "100", "request_id": "fund"]).status == 200)
            #expect(try await s.admin("PUT", "/v1/prices/api_call", ["price": "0.001"]).status == 200)
            let usage: [[String: Any]] = [["meter": "api_call", "quantity": 1]]

            struct Answer { let id: String; let status: Int; let code: String?; let allowed: Bool?; let latency: Duration; let phase: Int }
            let phase = Phase()
            // Allowed answers in a row since Redis came back (phase 2).
            let recovered = Phase()
            let traffic = Task { () -> [Answer] in
                var answers: [Answer] = []
                var n = 0
                while phase.value < 3 {
                    n += 1
                    let id = "p-\(n)"
                    let start = ContinuousClock.now
                    let current = phase.value
                    let response = try await s.service("POST", "/v1/authorize", ["account": "probe", "request_id": id, "usage": usage])
                    answers.append(Answer(id: id, status: response.status, code: response.errorCode,
                                          allowed: response.value["allowed"]?.bool, latency: start.duration(to: .now), phase: current))
                    if current == 2 { recovered.set(response.status == 200 ? recovered.value + 1 : 0) }
                }
                return answers
            }
            try await Task.sleep(for: .seconds(1))
            phase.set(1)
            s.redis.signal(SIGSTOP)
            try await Task.sleep(for: .seconds(2))
            s.redis.signal(SIGCONT)
            phase.set(2)
            // Until five calls in a row are allowed again; the bound only catches a hang (a
            // loaded machine may take a while to reconnect).
            let deadline = ContinuousClock.now + .seconds(60)
            while recovered.value < 5, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
            phase.set(3)
            let answers = try await traffic.value

            for answer in answers {
                #expect((answer.status == 200 && answer.allowed == true) || (answer.status == 503 && answer.code == "engine_unavailable"),
                        "\(answer.id): \(answer.status) \(answer.code ?? "")")
                // Only a hang: a loaded machine answered one in 7 s.
                #expect(answer.latency < .seconds(30), "\(answer.id) hung for \(answer.latency)")
            }
            let unavailable = answers.filter { $0.status == 503 }
            #expect(!unavailable.isEmpty, "no decision failed while Redis was paused")
            // Recovery by itself: the last calls after SIGCONT are allowed again.
            let after = answers.filter { $0.phase == 2 }
            #expect(after.suffix(5).count == 5 && after.suffix(5).allSatisfy { $0.status == 200 }, "traffic did not recover after SIGCONT")
            let worst = unavailable.map(\.latency).max() ?? .zero
            let sorted = unavailable.map(\.latency).sorted()
            print("FIGURE redis-paused: \(answers.count) decisions, \(unavailable.count) answered 503 engine_unavailable; 503 latency median \(sorted.isEmpty ? .zero : sorted[sorted.count / 2]), max \(worst) (--redis-timeout 50ms)")

            try await Self.settled(s)
            let net = Self.netByRequest(try await Self.ledger(s, "probe"))
            for answer in answers {
                if answer.status == 503 {
                    #expect((net[answer.id] ?? 0) == 0, "\(answer.id) was answered 503 but charged \(net[answer.id] ?? 0)")
                } else {
                    #expect(net[answer.id] == -1000, "\(answer.id) was allowed, charged \(net[answer.id] ?? 0)")
                }
            }
            try await Self.expectAuditClean(s)
        }
    }

    /// Runs `tollgate loadtest --workload <workload>` against `s`, applies `fault` once the
    /// load's decisions flow (the server's own count, not a guessed delay a slow start could
    /// outlast), and checks that the fault landed inside the traffic and the books are right.
    static func loadtest(
        _ s: E2EServer, workload: String, duration: Int = 5, faultName: String, fault: () async throws -> Void
    ) async throws {
        let run = Task {
            try await CommandRunner.run(CommandRunner.product("tollgate"),
                ["loadtest", "--quiet", "--server", s.server.baseURL, "--token", E2ETokens.service, "--workload", workload,
                 "--duration", "\(duration)s", "--concurrency", "4", "--accounts", "3", "--json",
                 // Calls fail during the fault, on purpose: the books are what is checked.
                 "--max-error-rate", "100"],
                environment: ["TOLLGATE_ADMIN_TOKEN": E2ETokens.admin])
        }
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline, try await Self.decisionsServed(s) < 50 {
            try await Task.sleep(for: .milliseconds(20))
        }
        let beforeFault = try await Self.decisionsServed(s)
        try await fault()
        let afterFault = try await Self.decisionsServed(s)
        let result = try await run.value
        #expect(result.status == 0, "\(result.stderr) \(result.stdout)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stdout)")
        #expect(json["books_ok"] as? Bool == true, "\(json)")
        // Every failure is a deliberate 503, never a 500.
        let kinds = json["error_kinds"] as? [String: Int] ?? [:]
        #expect(kinds.keys.allSatisfy { $0 == "HTTP 503 engine_unavailable" }, "\(kinds)")
        // The fault landed inside the traffic: calls were answered before it, some failed, and
        // calls were allowed again after it.
        #expect(beforeFault >= 50, "the load never started before the fault")
        #expect((json["errors"] as? Int ?? 0) > 0, "no call failed: the fault did not land during the load \(json)")
        #expect(try await Self.decisionsServed(s) > afterFault, "nothing was allowed after the fault \(json)")
        print("FIGURE \(faultName) (\(workload)): allowed \(json["allowed"] ?? "?"), errors \(json["errors"] ?? "?"), books_ok \(json["books_ok"] ?? "?")")
        try await Self.settled(s)
        try await Self.expectAuditClean(s)
        let audit = try await s.admin("GET", "/v1/audit")
        #expect(audit.value["accounts_checked"]?.int ?? 0 >= 3)
    }

    @Test("Redis SIGKILLed and restarted (strict durability) during a loadtest: every call acknowledged as allowed is in the ledger once, audit clean")
    func redisKilledDuringLoadtest() async throws {
        let s = try await E2EServer(arguments: ["--redis-timeout", "250ms", "--durability", "strict"], persistentRedis: true,
                                    redisArguments: ["--appendfsync", "always"])
        defer { Task { try? await s.stop() } }
        // A long run: a restarted Redis reloading its fsync'd log on a loaded machine took most
        // of a 5 s run, and the load ended before any call could be allowed again.
        try await Self.loadtest(s, workload: "calls", duration: 15, faultName: "redis-killed (strict)") {
            s.redis.signal(SIGKILL)
            try await Task.sleep(for: .milliseconds(500))
            try await s.redis.start()
        }
        try await s.stop()
    }

    @Test("Redis stalls just past --redis-timeout during a streaming loadtest: a report answered 503 may still be applied before the settle, and the books still balance")
    func redisStallsDuringStreams() async throws {
        try await E2EServer.with(arguments: ["--redis-timeout", "50ms"]) { s in
            // Stalls a little longer than the timeout: the call in flight is answered 503 and
            // then runs, and the stream's next call (its settle) finds Redis back.
            // A longer load than the stalls, so that calls are allowed after them on a slow machine.
            try await Self.loadtest(s, workload: "stream", duration: 12, faultName: "redis-stalls") {
                for _ in 0..<10 {
                    s.redis.signal(SIGSTOP)
                    try await Task.sleep(for: .milliseconds(70))
                    s.redis.signal(SIGCONT)
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
        }
    }

    @Test("tollgate serve SIGKILLed with open holds: after their TTL the holds are gone and the books balance; a restarted server carries on")
    func serverKilledWithOpenHolds() async throws {
        let redis = try await RedisServer()
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-fault-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: data) }
        func serve() async throws -> ServerProcess {
            try await ServerProcess.start(redis: redis, dataDirectory: data, adminToken: E2ETokens.admin, serviceToken: E2ETokens.service,
                                          arguments: ["--log-level", "warning", "--redis-timeout", "10s"])
        }
        let first = try await serve()
        let s1 = E2EServer(redis: redis, server: first)
        #expect(try await s1.admin("POST", "/v1/accounts", ["id": "h"]).status == 201)
        #expect(try await s1.admin("POST", "/v1/accounts/h/credits", ["amount": "10", "request_id": "fund"]).status == 200)
        #expect(try await s1.admin("PUT", "/v1/prices/api_call", ["price": "1"]).status == 200)
        for n in 1...3 {
            let held = try await s1.authorize(["account": "h", "request_id": "hold-\(n)", "mode": "hold", "ttl_ms": 1500,
                                               "usage": [["meter": "api_call", "quantity": 1]]])
            #expect(held["allowed"] == true, "\(held)")
        }
        #expect(try await s1.admin("GET", "/v1/accounts/h").value["held"] == "3")
        first.signal(SIGKILL)
        _ = try await first.waitForExit()

        let second = try await serve()
        let s2 = E2EServer(redis: redis, server: second)
        try await Task.sleep(for: .milliseconds(1700))
        let account = try await s2.admin("GET", "/v1/accounts/h")
        #expect(account.value["held"] == "0" && account.value["balance"] == "10", "\(account)")
        let kinds = try await Self.ledger(s2, "h").compactMap { $0["kind"]?.string }
        #expect(kinds.filter { $0 == "expire" }.count == 3, "\(kinds)")
        try await Self.expectAuditClean(s2)
        // It carries on.
        #expect(try await s2.authorize(["account": "h", "request_id": "after", "usage": [["meter": "api_call", "quantity": 1]]])["allowed"] == true)
        _ = try await second.stop()
        redis.stop()
    }

    @Test("--fail-open: calls allowed while Redis is down are journaled, survive a crash of the server, and are charged once and only once")
    func failOpenJournal() async throws {
        let redis = try await RedisServer(persistent: true)
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-failopen-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: data) }
        func serve() async throws -> E2EServer {
            E2EServer(redis: redis, server: try await ServerProcess.start(
                redis: redis, dataDirectory: data, adminToken: E2ETokens.admin, serviceToken: E2ETokens.service,
                arguments: ["--log-level", "error", "--redis-timeout", "200ms", "--fail-open"]))
        }
        let s1 = try await serve()
        #expect(try await s1.admin("POST", "/v1/accounts", ["id": "fo"]).status == 201)
        #expect(try await s1.admin("POST", "/v1/accounts/fo/credits", ["amount": "10", "request_id": "fund"]).status == 200)
        #expect(try await s1.admin("PUT", "/v1/prices/api_call", ["price": "0.5"]).status == 200)
        let key = try await s1.admin("POST", "/v1/accounts/fo/keys").value["secret"]?.string ?? ""
        let usage: [[String: Any]] = [["meter": "api_call", "quantity": 1]]
        // Warm: the server learns the key and the prices while Redis is up.
        #expect(try await s1.authorize(["key": key, "request_id": "warm", "usage": usage])["allowed"] == true)

        redis.stop()
        var journaled: [String] = []
        for n in 1...4 {
            let id = "fo-\(n)"
            let response = try await s1.service("POST", "/v1/authorize", n % 2 == 0 ? ["key": key, "request_id": id, "usage": usage]
                                                                                   : ["account": "fo", "request_id": id, "usage": usage])
            #expect(response.status == 200 && response.value["allowed"] == true && response.header("Tollgate-Fail-Open") == "1", "\(response)")
            journaled.append(id)
        }
        let check = try await s1.check([("X-Api-Key", key), ("X-Request-Id", "fo-check")])
        #expect(check.status == 200, "\(check)")
        journaled.append("fo-check")
        let ready = try await s1.http.json("GET", "/readyz")
        #expect(ready.status == 503 && ready.value["fail_open_journal"] == "5", "\(ready)")
        // A hold cannot be allowed without Redis: it fails closed.
        #expect(try await s1.service("POST", "/v1/authorize", ["account": "fo", "request_id": "fo-hold", "mode": "hold", "usage": usage]).status == 503)

        // The server crashes before Redis is back; the next one replays its journal.
        s1.server.signal(SIGKILL)
        _ = try await s1.server.waitForExit()
        try await redis.start()
        let s2 = try await serve()
        try await Self.settled(s2)
        var net = Self.netByRequest(try await Self.ledger(s2, "fo"))
        for id in journaled { #expect(net[id] == -500_000, "\(id): \(net[id] ?? 0)") }
        // A retry of a journaled call by the gateway is a replay, and a restart replays nothing.
        #expect(try await s2.authorize(["account": "fo", "request_id": "fo-1", "usage": usage])["replayed"] == true)
        _ = try await s2.server.stop()
        let s3 = try await serve()
        try await Self.settled(s3)
        net = Self.netByRequest(try await Self.ledger(s3, "fo"))
        for id in journaled { #expect(net[id] == -500_000, "\(id): \(net[id] ?? 0)") }
        #expect(try await s3.admin("GET", "/v1/accounts/fo").value["balance"] == "7")  // 10 - 0.5 (warm) - 5 × 0.5
        try await Self.expectAuditClean(s3)
        _ = try await s3.server.stop()
        redis.stop()
    }
}


extension FaultTests {
    /// Entries of a ledger per request id.
    static func entriesByRequest(_ entries: [JSONValue]) -> [String: Int] {
        var count: [String: Int] = [:]
        for entry in entries { if let id = entry["request_id"]?.string { count[id, default: 0] += 1 } }
        return count
    }

    @Test("decisions answered 503 while Redis is paused are voided even when tollgate serve is killed before Redis answers: the voids are read back at start")
    func pendingVoidsSurviveACrash() async throws {
        let redis = try await RedisServer()
        defer { redis.stop() }
        let data = ServerProcess.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: data) }
        func serve() async throws -> E2EServer {
            E2EServer(redis: redis, server: try await ServerProcess.start(
                redis: redis, dataDirectory: data, adminToken: E2ETokens.admin, serviceToken: E2ETokens.service,
                arguments: ["--log-level", "error", "--redis-timeout", "100ms"]))
        }
        let s1 = try await serve()
        #expect(try await s1.admin("POST", "/v1/accounts", ["id": "pv"]).status == 201)
        #expect(try await s1.admin("POST", "/v1/accounts/pv/credits", ["amount": "10", "request_id": "fund"]).status == 200)
        #expect(try await s1.admin("PUT", "/v1/prices/api_call", ["price": "0.5"]).status == 200)
        let usage: [[String: Any]] = [["meter": "api_call", "quantity": 1]]
        #expect(try await s1.authorize(["account": "pv", "request_id": "warm", "usage": usage])["allowed"] == true)

        // Redis takes the calls but cannot answer; the gateway is told 503.
        redis.signal(SIGSTOP)
        let refused = ["pv-1", "pv-2", "pv-hold"]
        for id in refused {
            var body: [String: Any] = ["account": "pv", "request_id": id, "usage": usage]
            if id == "pv-hold" { body["mode"] = "hold"; body["ttl_ms"] = 600_000 }
            let response = try await s1.service("POST", "/v1/authorize", body)
            #expect(response.status == 503, "\(id): \(response)")
        }
        // The server dies before Redis answers again; then Redis runs what it had received.
        s1.server.signal(SIGKILL)
        _ = try await s1.server.waitForExit()
        redis.signal(SIGCONT)

        let s2 = try await serve()
        try await Self.settled(s2)
        let ledger = try await Self.ledger(s2, "pv")
        let net = Self.netByRequest(ledger)
        let entries = Self.entriesByRequest(ledger)
        for id in refused { #expect((net[id] ?? 0) == 0, "\(id) was answered 503 but charged \(net[id] ?? 0)") }
        // Redis did run them (a charge and its void), so the voids were needed.
        #expect(refused.contains { (entries[$0] ?? 0) >= 2 }, "none of the refused calls reached Redis: \(entries)")
        let account = try await s2.admin("GET", "/v1/accounts/pv")
        #expect(account.value["held"] == "0" && account.value["balance"] == "9.5", "\(account)")
        try await Self.expectAuditClean(s2)
        try await s2.server.stop()
    }

    @Test("--fail-open: a call that could not be journaled (the journal full, or a hold) is answered 503 and voided once Redis answers")
    func failOpenUnjournaledIsVoided() async throws {
        try await E2EServer.with(arguments: ["--redis-timeout", "100ms", "--fail-open", "--fail-open-journal-limit", "1"]) { s in
            #expect(try await s.admin("POST", "/v1/accounts", ["id": "fu"]).status == 201)
            #expect(try await s.admin("POST", "/v1/accounts/fu/credits", ["amount": "10", "request_id": "fund"]).status == 200)
            #expect(try await s.admin("PUT", "/v1/prices/api_call", ["price": "0.5"]).status == 200)
            let key = try await s.admin("POST", "/v1/accounts/fu/keys").value["secret"]?.string ?? ""
            let usage: [[String: Any]] = [["meter": "api_call", "quantity": 1]]
            #expect(try await s.authorize(["key": key, "request_id": "warm", "usage": usage])["allowed"] == true)

            s.redis.signal(SIGSTOP)
            let allowed = try await s.service("POST", "/v1/authorize", ["account": "fu", "request_id": "fu-journaled", "usage": usage])
            #expect(allowed.status == 200 && allowed.header("Tollgate-Fail-Open") == "1", "\(allowed)")
            var refused: [String] = []
            for (id, body) in [("fu-full", ["account": "fu", "request_id": "fu-full", "usage": usage] as [String: Any]),
                               ("fu-full-key", ["key": key, "request_id": "fu-full-key", "usage": usage]),
                               ("fu-hold", ["account": "fu", "request_id": "fu-hold", "mode": "hold", "ttl_ms": 600_000, "usage": usage])] {
                let response = try await s.service("POST", "/v1/authorize", body)
                #expect(response.status == 503, "\(id): \(response)")
                refused.append(id)
            }
            let check = try await s.check([("X-Api-Key", key), ("X-Request-Id", "fu-check")])
            #expect(check.status == 503, "\(check)")
            refused.append("fu-check")
            s.redis.signal(SIGCONT)

            try await Self.settled(s)
            let ledger = try await Self.ledger(s, "fu")
            let net = Self.netByRequest(ledger)
            #expect(net["fu-journaled"] == -500_000, "\(net)")
            for id in refused { #expect((net[id] ?? 0) == 0, "\(id) was answered 503 but charged \(net[id] ?? 0)") }
            #expect(refused.contains { (Self.entriesByRequest(ledger)[$0] ?? 0) >= 2 }, "none of the refused calls reached Redis")
            let account = try await s.admin("GET", "/v1/accounts/fu")
            #expect(account.value["held"] == "0" && account.value["balance"] == "9", "\(account)")
            try await Self.expectAuditClean(s)
        }
    }
}

/// A phase number shared by a test and its traffic task.
final class Phase: Sendable {
    private let state = Mutex(0)
    var value: Int { state.withLock { $0 } }
    func set(_ value: Int) { state.withLock { $0 = value } }
}
