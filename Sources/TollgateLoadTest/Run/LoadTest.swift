import Synchronization
import TollgateCore

/// Runs a workload against a target: sets up its own accounts, prices and keys, sends traffic
/// for the configured time (closed or open loop), then checks the books.
public struct LoadTest: Sendable {
    /// What to send, how fast, for how long.
    public let configuration: LoadTestConfiguration
    /// Where.
    public let target: any LoadTarget
    /// Tests: runs after the set-up, before any traffic (e.g. to make the target charge
    /// something else than the plan expects).
    var afterSetUp: (@Sendable () async -> Void)?

    /// A load test of `configuration` on `target`.
    public init(configuration: LoadTestConfiguration, target: any LoadTarget) {
        self.configuration = configuration
        self.target = target
    }

    /// Runs it. `progress` is called about once a second while traffic runs.
    public func run(
        progressInterval: Duration = .seconds(1),
        progress: (@Sendable (LoadProgress) -> Void)? = nil
    ) async throws(LoadTestError) -> LoadTestReport {
        try configuration.validate()
        let plan = try await setUp()
        await afterSetUp?()
        let counters = LiveCounters()
        let start = ContinuousClock.now
        let end = start + configuration.duration
        let configuration = self.configuration
        let target = self.target

        let reporter = progress.map { progress in
            Task {
                var last = (instant: start, decisions: 0)
                while !Task.isCancelled {
                    try? await Task.sleep(for: progressInterval)
                    if Task.isCancelled { break }
                    let now = ContinuousClock.now
                    let decisions = counters.decisions.load(ordering: .relaxed)
                    let seconds = Self.seconds(now - last.instant)
                    progress(LoadProgress(
                        elapsed: now - start, decisions: decisions, denied: counters.denied.load(ordering: .relaxed),
                        errors: counters.errors.load(ordering: .relaxed),
                        recentRate: seconds > 0 ? Double(decisions - last.decisions) / seconds : 0))
                    last = (now, decisions)
                }
            }
        }

        let total = await withTaskGroup(of: Result<WorkerRecord, LoadTestError>.self) { group in
            for index in 0..<configuration.concurrency {
                group.addTask {
                    await target.result { (session) async throws(LoadTestError) -> WorkerRecord in
                            var worker = Worker(index: index, plan: plan, session: session, counters: counters, deadline: end)
                            switch configuration.pacing {
                            case .closedLoop:
                                while ContinuousClock.now < end {
                                    await worker.step(due: nil)
                                }
                            case .openLoop(let rate):
                                let interval = 1.0 / rate
                                while true {
                                    let number = counters.tickets.wrappingAdd(1, ordering: .relaxed).oldValue
                                    let due = start + .nanoseconds(Int64(Double(number) * interval * 1e9))
                                    // Nothing is sent after the deadline, however far behind
                                    // the target is (what was due and never sent is reported).
                                    if due >= end || ContinuousClock.now >= end { break }
                                    if due > .now { try? await Task.sleep(until: due, tolerance: .microseconds(50), clock: .continuous) }
                                    worker.record.sent += 1
                                    await worker.step(due: due)
                                }
                            }
                            return worker.record
                    }
                }
            }
            var total = WorkerRecord()
            var failures: [LoadTestError] = []
            for await result in group {
                switch result {
                case .success(let record): total.merge(record)
                case .failure(let error): failures.append(error)
                }
            }
            return (total, failures)
        }
        let elapsed = ContinuousClock.now - start
        reporter?.cancel()
        var record = total.0
        if let failure = total.1.first {
            // Workers that could not connect: an error per worker; with none connected, the run failed.
            guard total.1.count < configuration.concurrency else { throw failure }
            for error in total.1 { record.error(error) }
        }
        // The set-up's top-ups are in the books too, and every account is checked, used or not.
        for account in plan.accounts + [plan.limited].compactMap({ $0 }) {
            record.books.applied(account.id, "\(account.id)-setup", net: RunPlan.startingCredit.micros, required: true)
        }
        if let broke = plan.broke { record.books.uncertain(broke.id, []) }
        let uncertain = record.books.accounts.values.reduce(0) { $0 + $1.unknown.count + $1.uncertainCoupons }
        let books: BooksCheck
        if record.allowed + record.denied.values.reduce(0, +) == 0 {
            books = .notChecked("no decision was made", uncertainCalls: uncertain)
        } else {
            do throws(LoadTestError) {
                books = try await target.withSession { (session) async throws(LoadTestError) -> BooksCheck in
                    try await record.books.check(session)
                }
            } catch where error.code == .unreachable || error.code == .requestFailed {
                books = .notChecked("target unreachable: \(error.message)", uncertainCalls: uncertain)
            } catch {
                books = .notChecked("\(error.code): \(error.message)", uncertainCalls: uncertain)
            }
        }
        // The throughput's window: from the first send to the deadline while answers were
        // still coming in at the deadline, else to the last answer (the time stragglers take
        // after the deadline, and the connections' set-up before the first send, are left out).
        let firstSend = record.firstSend ?? start
        let window: LoadTestReport.Window
        if record.decisionsAfterDeadline == 0, let last = record.lastCompletion {
            window = .init(duration: last - firstSend, end: .lastCompletion)
        } else {
            window = .init(duration: end - firstSend, end: .deadline)
        }
        var unsent: Int?
        if case .openLoop(let rate) = configuration.pacing {
            let due = Int((rate * Self.seconds(configuration.duration)).rounded(.up))
            unsent = max(0, due - record.sent)
        }
        return LoadTestReport(configuration: configuration, target: target.address, elapsed: elapsed, window: window,
                              unsent: unsent, record: record, books: books)
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    /// Prices, accounts (credited), keys; for `mixed` also a rate-limited key, an account
    /// without credit and coupons.
    private func setUp() async throws(LoadTestError) -> RunPlan {
        let configuration = self.configuration
        let run = configuration.runID
        let count = configuration.trafficAccounts
        let setupSessions = min(8, count)
        try await target.withSession { (session) async throws(LoadTestError) in
            do throws(LoadTestError) {
                try await session.setPrice(meter: RunPlan.callMeter, price: RunPlan.callPrice, per: 1)
                try await session.setPrice(meter: RunPlan.tokenMeter, price: RunPlan.tokenPrice, per: 1)
            } catch where error.code == .requestFailed {
                throw LoadTestError(.setupFailed, "cannot set the load test's prices: \(error.message)")
            }
        }
        // Accounts in parallel over a few sessions.
        let made = await withTaskGroup(of: Result<[(Int, PlannedAccount)], LoadTestError>.self) { group in
            for lane in 0..<setupSessions {
                group.addTask {
                    await target.result { (session) async throws(LoadTestError) -> [(Int, PlannedAccount)] in
                            var made: [(Int, PlannedAccount)] = []
                            for index in stride(from: lane, to: count, by: setupSessions) {
                                made.append((index, try await Self.makeAccount(session, "\(run)-\(index)", credit: RunPlan.startingCredit)))
                            }
                            return made
                    }
                }
            }
            var all: [(Int, PlannedAccount)] = []
            for await result in group {
                switch result {
                case .success(let made): all += made
                case .failure(let error): return Result<[PlannedAccount], LoadTestError>.failure(error)
                }
            }
            return .success(all.sorted { $0.0 < $1.0 }.map(\.1))
        }
        let traffic = try made.get()
        guard configuration.workload == .mixed else {
            return RunPlan(configuration: configuration, accounts: traffic, limited: nil, broke: nil, coupons: [])
        }
        return try await target.withSession { (session) async throws(LoadTestError) -> RunPlan in
            let limited = try await Self.makeAccount(session, "\(run)-limited", credit: RunPlan.startingCredit, rateLimit: 1)
            let broke = try await Self.makeAccount(session, "\(run)-broke", credit: nil)
            let coupons: [String]
            do throws(LoadTestError) {
                coupons = try await session.createCoupons(amount: RunPlan.couponAmount, count: 1000)
            } catch {
                throw LoadTestError(.setupFailed, "cannot create coupons: \(error.message)")
            }
            return RunPlan(configuration: configuration, accounts: traffic, limited: limited, broke: broke, coupons: coupons)
        }
    }

    /// An account with `credit` (its top-up is recorded by the books check as the setup's)
    /// and a key, optionally rate-limited.
    private static func makeAccount(
        _ session: any LoadSession, _ name: String, credit: Money?, rateLimit: Int64? = nil
    ) async throws(LoadTestError) -> PlannedAccount {
        let id = try RunPlan.id(name)
        do {
            try await session.createAccount(id)
            if let credit { _ = try await session.credit(id, amount: credit, requestID: "\(name)-setup") }
            let key = try await session.createKey(for: id)
            if let rateLimit { try await session.setKeyRateLimit(keyID: key.keyID, perSecond: rateLimit) }
            return PlannedAccount(id: id, key: key.secret)
        } catch where error.code == .requestFailed {
            throw LoadTestError(.setupFailed, "cannot set up account '\(name)': \(error.message)")
        }
    }
}

extension LoadTarget {
    /// `withSession`, its error as a value (for task groups).
    func result<Value: Sendable>(
        _ body: (any LoadSession) async throws(LoadTestError) -> Value
    ) async -> Result<Value, LoadTestError> {
        do {
            return .success(try await withSession(body))
        } catch {
            return .failure(error)
        }
    }
}
