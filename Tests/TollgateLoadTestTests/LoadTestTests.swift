import Foundation
import Testing
import TollgateCore
@testable import TollgateLoadTest
import TollgateTestSupport

/// In-process runs: the engine on a real redis-server started by the test. Short runs, and
/// only counts and consistency are asserted, never speed (the machine is shared).
@Suite("loadtest in-process")
struct InProcessLoadTests {
    static let couponKey = try! CouponKey(secret: "load-test-coupon-secret")

    static func run(_ configuration: LoadTestConfiguration) async throws -> LoadTestReport {
        let redis = try await RedisServer()
        let target = try await EngineTarget.connect(redisURL: redis.url, connections: 2, couponKey: Self.couponKey)
        let report = try await LoadTest(configuration: configuration, target: target).run()
        await target.shutdown()
        return report
    }

    /// Runs for 2 s, and again for twice as long (up to 16 s) while the run was too short to
    /// show what the test looks for: a loaded machine (every suite starting its servers at
    /// once) can stall a short run to a handful of calls. Only the sample grows; nothing
    /// asserts how fast the calls were.
    static func runUntil(_ sampled: (LoadTestReport) -> Bool,
                         _ configuration: (Duration) -> LoadTestConfiguration) async throws -> LoadTestReport {
        var duration = Duration.seconds(2)
        while true {
            let report = try await run(configuration(duration))
            if sampled(report) || duration >= .seconds(16) { return report }
            duration *= 2
        }
    }

    @Test("each workload, closed loop: traffic flows and the books are right", arguments: Workload.allCases)
    func workload(_ workload: Workload) async throws {
        let report = try await Self.runUntil({ report in
            workload != .mixed || (report.denied["rate_limited"] ?? 0 > 0 && report.denied["insufficient_credit"] ?? 0 > 0
                                   && report.calls["topup"] ?? 0 > 0 && report.redemptions > 0 && report.streams > 0)
        }) { duration in
            LoadTestConfiguration(workload: workload, duration: duration, concurrency: 6, accounts: 5, reportsPerStream: 3)
        }
        #expect(report.books.ok, "\(report.books.problems)")
        #expect(report.errors == 0, "\(report.errorKinds)")
        #expect(report.allowed > 0)
        #expect(report.latency.count >= report.decisions)
        switch workload {
        case .stream:
            #expect(report.streams > 0)
            #expect(report.calls["report"] ?? 0 >= 3 * report.streams)
        case .mixed:
            #expect(report.denied["rate_limited"] ?? 0 > 0)
            #expect(report.denied["insufficient_credit"] ?? 0 > 0)
            #expect(report.calls["topup"] ?? 0 > 0)
            #expect(report.redemptions > 0)
            #expect(report.streams > 0)
        case .hot:
            #expect(report.books.accountsChecked == 1)
        case .calls:
            #expect(report.books.accountsChecked == 5)
            #expect(report.denied.isEmpty)
        }
    }

    @Test("open loop at a target rate, Zipf-skewed accounts")
    func openLoop() async throws {
        let rate = 300.0
        let report = try await Self.runUntil({ $0.decisions > 0 }) { duration in
            LoadTestConfiguration(workload: .calls, duration: duration, concurrency: 4, pacing: .openLoop(ratePerSecond: rate),
                                  accounts: 20, skew: .zipf(exponent: 1.2))
        }
        #expect(report.books.ok, "\(report.books.problems)")
        // At most one request per due time: never more than the rate allows over the run.
        let dueTimes = Int(LoadTest.seconds(report.configuration.duration) * rate)
        #expect(report.decisions > 0 && report.decisions <= dueTimes)
        #expect(report.errors == 0)
    }

    @Test("the books check finds a missing debit and an entry nobody allowed")
    func booksCheckFindsDrift() async throws {
        let redis = try await RedisServer()
        let engine = try await Engine.start(redis: redis.client())
        let account = try AccountID("drift")
        _ = try await engine.createAccount(account)
        _ = try await engine.credit(account, amount: try Money(parsing: "10"), requestID: try RequestID("setup"))
        _ = try await engine.debit(account, amount: try Money(parsing: "1"), requestID: try RequestID("stranger"))
        var books = Books()
        books.applied(account, "setup", net: 10_000_000, required: true)
        books.applied(account, "never-sent", net: -5, required: true)
        let check = try await books.check(EngineSession(engine: engine))
        #expect(!check.ok)
        #expect(check.problems.contains { $0.contains("stranger") && $0.contains("did not see allowed") })
        #expect(check.problems.contains { $0.contains("missing from the ledger") })

        var right = Books()
        right.applied(account, "setup", net: 10_000_000, required: true)
        right.applied(account, "stranger", net: -1_000_000, required: true)
        #expect(try await right.check(EngineSession(engine: engine)).ok)
    }

    @Test("the books check catches an engine that charges another price than the plan set")
    func wrongPriceIsCaught() async throws {
        let redis = try await RedisServer()
        let target = try await EngineTarget.connect(redisURL: redis.url, connections: 2, couponKey: Self.couponKey)
        var test = LoadTest(configuration: LoadTestConfiguration(workload: .calls, duration: .seconds(2), concurrency: 2, accounts: 2),
                            target: target)
        // After the plan priced a call at 1 micro-credit, the engine is told 3: every reply and
        // ledger entry then agree with each other, but not with the plan.
        let engine = target.engine
        test.afterSetUp = {
            try? await engine.setPrice(try PriceKey(meter: RunPlan.callMeter), try Price(price: Money(micros: 3)!, per: 1))
        }
        let report = try await test.run()
        await target.shutdown()
        #expect(report.allowed > 0)
        #expect(report.errors == 0, "\(report.errorKinds)")
        #expect(report.books.checked)
        #expect(!report.books.ok)
        #expect(!report.ok)
        #expect(report.books.problems.contains { $0.contains("charged another amount than the plan's prices") }, "\(report.books.problems)")
        #expect(report.books.problems.contains { $0.contains("final balance") }, "\(report.books.problems)")
        #expect(report.failures.contains("the books are wrong"))
    }

    @Test("open loop: latency counts from the intended send time, so a target that cannot keep up shows it")
    func openLoopLatencyFromDueTime() async throws {
        // One worker asked for far more than one worker can do: each request is later than the
        // last, and that lateness is the latency (no coordinated omission).
        let open = try await Self.runUntil({ $0.decisions >= 20 }) { duration in
            LoadTestConfiguration(workload: .calls, duration: duration, concurrency: 1, pacing: .openLoop(ratePerSecond: 1_000_000), accounts: 1)
        }
        #expect(open.ok, "\(open.failures)")
        #expect(open.decisions >= 20)
        // What one call takes: one worker sends them one after the other, so the window over
        // the calls made (measured on the same machine at the same moment, whatever its load).
        let perCall = LoadTest.seconds(open.window.duration) * 1000 / Double(max(1, open.decisionsInWindow))
        // The lag grows through the run to about its length: p99 is far above one call's time.
        #expect(open.latency.p99 > 5 * perCall, "p99 \(open.latency.p99) ms, one call \(perCall) ms")
        #expect(open.latency.p99 > 0.3 * LoadTest.seconds(open.window.duration) * 1000, "p99 \(open.latency.p99) ms")
        #expect(open.latency.p50 < open.latency.p99)
        // Most of what was due was never sent, and the report says so.
        #expect((open.unsent ?? 0) > open.decisions)
        #expect(open.text.contains("never sent"))
    }

    @Test("latencies beyond the histogram are counted at its ceiling, not dropped")
    func clampedLatency() {
        var record = WorkerRecord()
        let now = ContinuousClock.now
        record.latency(since: now - .seconds(300), now: now)
        record.latency(since: now - .milliseconds(2), now: now)
        #expect(record.clamped == 1)
        #expect(record.latency.totalCount == 2)
        #expect(record.latency.max >= WorkerRecord.latencyCeiling - WorkerRecord.latencyCeiling / 1000)
    }

    @Test("bad settings are refused before anything runs")
    func validation() {
        #expect(throws: LoadTestError.self) { try LoadTestConfiguration(workload: .calls, concurrency: 0).validate() }
        #expect(throws: LoadTestError.self) { try LoadTestConfiguration(workload: .calls, pacing: .openLoop(ratePerSecond: 0)).validate() }
        #expect(throws: LoadTestError.self) { try LoadTestConfiguration(workload: .calls, runID: "a b").validate() }
        #expect(throws: LoadTestError.self) { try LoadTestConfiguration(workload: .calls, maxErrorFraction: 2).validate() }
    }

    @Test("an unreachable Redis is a clear error")
    func unreachableRedis() async throws {
        let port = try RedisServer.freePort()
        await #expect {
            _ = try await EngineTarget.connect(redisURL: "redis://127.0.0.1:\(port)", timeout: .milliseconds(500), couponKey: Self.couponKey)
        } throws: { error in
            (error as? LoadTestError)?.code == .unreachable
        }
    }
}

/// The `tollgate loadtest` command against the real embedded server (`tollgate serve` with its
/// own redis-server), and its failure paths.
@Suite("tollgate loadtest over HTTP")
struct HTTPLoadTests {
    static let admin = "loadtest-admin-token"
    static let service = "loadtest-service-token"

    static func loadtest(_ arguments: [String], environment: [String: String] = [:]) async throws -> CommandResult {
        try await CommandRunner.run(CommandRunner.product("tollgate"), ["loadtest", "--quiet"] + arguments, environment: environment)
    }

    @Test("each workload against the embedded server, books checked (--json)")
    func workloads() async throws {
        let server = try await ServerProcess.start(adminToken: Self.admin, serviceToken: Self.service, arguments: ["--log-level", "warning", "--redis-timeout", "10s"])
        for workload in Workload.allCases {
            let result = try await Self.loadtest(
                ["--workload", workload.rawValue, "--duration", "1s", "--concurrency", "4", "--accounts", "3", "--reports", "2",
                 "--server", server.baseURL, "--token", Self.service, "--json"],
                environment: ["TOLLGATE_ADMIN_TOKEN": Self.admin])
            #expect(result.status == 0, "\(workload): \(result.stderr) \(result.stdout)")
            let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
            #expect(json["books_ok"] as? Bool == true, "\(workload): \(json)")
            #expect(json["errors"] as? Int == 0, "\(workload): \(json)")
            #expect((json["allowed"] as? Int ?? 0) > 0)
            #expect(json["throughput"] is Double)
            #expect(json["ok"] as? Bool == true, "\(workload): \(json)")
            let window = try #require(json["throughput_window"] as? [String: Any])
            #expect(window["from"] as? String == "first_send")
            #expect(["deadline", "last_completion"].contains(window["to"] as? String ?? ""))
            #expect((window["seconds"] as? Double ?? 0) <= 1.0)
            #expect(json["latency_clamped"] as? Int == 0)
            let latency = try #require(json["latency_ms"] as? [String: Any])
            for field in ["p50", "p90", "p99", "p999", "max"] { #expect(latency[field] is Double, "\(field)") }
            #expect(json["denied"] is [String: Any])
            if workload == .mixed {
                let denied = try #require(json["denied"] as? [String: Int])
                #expect(denied["rate_limited"] ?? 0 > 0)
                #expect((json["redemptions"] as? Int ?? 0) > 0)
            }
        }
        try await server.stop()
    }

    @Test("text summary and open loop over HTTP")
    func textSummary() async throws {
        let server = try await ServerProcess.start(adminToken: Self.admin, serviceToken: Self.service, arguments: ["--log-level", "warning", "--redis-timeout", "10s"])
        let result = try await Self.loadtest(
            ["--duration", "1s", "--concurrency", "2", "--rate", "100", "--accounts", "2",
             "--server", server.baseURL, "--token", Self.service, "--admin-token", Self.admin])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("open loop at 100/s"))
        #expect(result.stdout.contains("books       ok"))
        #expect(result.stdout.contains("from the first send to"))
        #expect(result.stdout.contains("p99.9"))
        try await server.stop()
    }

    @Test("bad flags exit 2 with a message", arguments: [
        ["--workload", "nonsense", "--redis", "redis://127.0.0.1:1"],
        ["--duration", "1s"],
        ["--server", "http://127.0.0.1:1", "--redis", "redis://127.0.0.1:1", "--token", "t"],
        ["--server", "http://127.0.0.1:1"],
        ["--server", "ftp://nowhere", "--token", "t"],
        ["--redis", "redis://127.0.0.1:1", "--concurrency", "0"],
    ])
    func badFlags(_ arguments: [String]) async throws {
        let result = try await Self.loadtest(arguments, environment: ["TOLLGATE_SERVICE_TOKEN": ""])
        #expect(result.status == 2, "\(arguments): \(result.stdout) \(result.stderr)")
        #expect(!result.stderr.isEmpty)
    }

    @Test("an unreachable server or Redis exits 1 and says so")
    func unreachable() async throws {
        let port = try RedisServer.freePort()
        let http = try await Self.loadtest(["--server", "http://127.0.0.1:\(port)", "--token", "t", "--admin-token", "a", "--duration", "1s"])
        #expect(http.status == 1)
        #expect(http.stderr.contains("cannot connect to http://127.0.0.1:\(port)"), "\(http.stderr)")
        let redis = try await Self.loadtest(["--redis", "redis://127.0.0.1:\(port)", "--duration", "1s", "--timeout", "500ms"])
        #expect(redis.status == 1)
        #expect(redis.stderr.contains("cannot reach Redis"), "\(redis.stderr)")
    }

    @Test("a wrong service token: no decision is made, the run fails and the books are not checked")
    func wrongServiceToken() async throws {
        let server = try await ServerProcess.start(adminToken: Self.admin, serviceToken: Self.service, arguments: ["--log-level", "warning", "--redis-timeout", "10s"])
        let result = try await Self.loadtest(
            ["--duration", "500ms", "--concurrency", "2", "--accounts", "2", "--server", server.baseURL, "--token", "WRONG",
             "--admin-token", Self.admin, "--json"])
        _ = try await server.stop()
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("no decision was made"), "\(result.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stdout)")
        #expect(json["books_ok"] as? Bool != true, "\(json)")
        #expect(json["ok"] as? Bool == false)
        #expect(json["decisions"] as? Int == 0)
        #expect((json["errors"] as? Int ?? 0) > 0)
        let books = try #require(json["books"] as? [String: Any])
        #expect(books["checked"] as? Bool == false)
        #expect((json["error_kinds"] as? [String: Int])?.keys.contains { $0.contains("401") } == true, "\(json)")
    }

    @Test("a server that dies mid-run: the report is still printed, books not checked, exit 1")
    func serverDiesMidRun() async throws {
        // Its own Redis, so killing the server outright leaves nothing behind.
        let redis = try await RedisServer()
        let server = try await ServerProcess.start(
            redis: redis, adminToken: Self.admin, serviceToken: Self.service, arguments: ["--log-level", "warning", "--redis-timeout", "10s"])
        // Not --quiet: the first progress line (after 1 s of traffic) says the run is under way.
        // The run lasts well past it, so the kill falls inside the run however late a loaded
        // machine prints that line.
        let loadtest = try TestProcess(CommandRunner.product("tollgate"), [
            "loadtest", "--duration", "10s", "--concurrency", "2", "--accounts", "2", "--timeout", "1s",
            "--server", server.baseURL, "--token", Self.service, "--admin-token", Self.admin, "--json"])
        try await loadtest.waitForOutput(containing: " decisions ", timeout: .seconds(20))
        server.process.signal(SIGKILL)
        let termination = try await loadtest.waitForExit(timeout: .seconds(60))
        let result = (status: termination == .exited(1) ? Int32(1) : -1, stdout: loadtest.stdout, stderr: loadtest.stderr)
        #expect(result.status == 1, "\(result.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stdout) \(result.stderr)")
        #expect((json["decisions"] as? Int ?? 0) > 0, "\(json)")
        #expect((json["errors"] as? Int ?? 0) > 0, "\(json)")
        let books = try #require(json["books"] as? [String: Any])
        #expect(books["checked"] as? Bool == false)
        #expect((books["not_checked"] as? String ?? "").contains("target unreachable"), "\(books)")
        #expect(result.stderr.contains("not checked"), "\(result.stderr)")
    }

    @Test("a wrong admin token fails the set-up with a clear error")
    func wrongAdminToken() async throws {
        let server = try await ServerProcess.start(adminToken: Self.admin, serviceToken: Self.service, arguments: ["--log-level", "warning", "--redis-timeout", "10s"])
        let result = try await Self.loadtest(
            ["--duration", "1s", "--server", server.baseURL, "--token", Self.service, "--admin-token", "wrong"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("setup_failed") && result.stderr.contains("401"), "\(result.stderr)")
        try await server.stop()
    }
}
