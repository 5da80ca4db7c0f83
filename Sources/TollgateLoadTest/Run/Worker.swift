import TollgateCore

/// One worker: sends the workload's calls through its own session until the run ends.
struct Worker {
    let index: Int
    let plan: RunPlan
    let session: any LoadSession
    let counters: LiveCounters
    /// When the run stops sending.
    let deadline: ContinuousClock.Instant
    var record = WorkerRecord()
    var random: SplitMix64
    private var sequence = 0

    init(index: Int, plan: RunPlan, session: any LoadSession, counters: LiveCounters, deadline: ContinuousClock.Instant) {
        self.index = index
        self.deadline = deadline
        self.plan = plan
        self.session = session
        self.counters = counters
        self.random = SplitMix64(seed: UInt64(index) &* 0x9E37_79B9 &+ UInt64.random(in: 0...UInt64.max))
    }

    private static let callUsage = [try! UsageItem(meter: RunPlan.callMeter, quantity: 1)]
    private static let batchUsage = [try! UsageItem(meter: RunPlan.tokenMeter, quantity: RunPlan.tokensPerBatch)]

    /// A request id unique in the run.
    /// How many mixed-workload steps this worker has taken.
    private var mixedSteps = 0

    private mutating func nextID() -> String {
        sequence += 1
        return "\(plan.configuration.runID)-w\(index)-\(sequence)"
    }

    /// One unit of the workload; `due` is when it was meant to start (open loop) or nil.
    mutating func step(due: ContinuousClock.Instant?) async {
        switch plan.configuration.workload {
        case .calls, .hot:
            await call(plan.pick(&random), due: due)
        case .stream:
            await stream(plan.pick(&random), due: due)
        case .mixed:
            // Each worker's first steps go once through every kind of the mix (the rate-limited
            // key twice in a row, past its 1 per second), so even a short run shows all of
            // them; then the mix is random.
            let opening: [UInt64] = [75, 75, 0, 83, 88, 95, 55]
            let roll = mixedSteps < opening.count ? opening[mixedSteps] : random.next() % 100
            mixedSteps += 1
            switch roll {
            case 0..<55: await call(plan.pick(&random), due: due)
            case 55..<75: await stream(plan.pick(&random), due: due)
            case 75..<83: await call(plan.limited ?? plan.pick(&random), due: due)
            case 83..<88: await call(plan.broke ?? plan.pick(&random), due: due)
            case 88..<95: await topUp(plan.pick(&random), due: due)
            default:
                if let code = plan.takeCoupon() {
                    await redeem(plan.pick(&random), code: code, due: due)
                } else {
                    await topUp(plan.pick(&random), due: due)
                }
            }
        }
    }

    /// Counts a gateway decision.
    private mutating func decided(_ outcome: CallOutcome) {
        if outcome.allowed {
            record.allowed += 1
        } else {
            record.denied[outcome.reason ?? "denied", default: 0] += 1
            counters.denied.add(1, ordering: .relaxed)
        }
        counters.decisions.add(1, ordering: .relaxed)
        record.completed(at: .now, deadline: deadline)
    }

    /// Checks an allowed call's answer against what the plan's prices make it; a different
    /// amount is a book problem (the books then count the plan's figure, not the answer's).
    private mutating func expect(
        _ outcome: CallOutcome, _ expected: Int64, _ what: String, _ account: AccountID, _ requestID: String
    ) {
        if outcome.amount.micros != expected {
            record.books.mismatch(account, requestID, what, answered: outcome.amount.micros, expected: expected)
        }
    }

    private mutating func failed(_ error: LoadTestError) {
        record.error(error)
        counters.errors.add(1, ordering: .relaxed)
    }

    /// Times one call from `start` (its due time in an open loop, else when it is sent). A
    /// failed call is counted in the errors, not timed: its latency (a timeout, a refused
    /// connection) says nothing about how fast decisions are.
    private mutating func timed(
        _ kind: String, from start: ContinuousClock.Instant?,
        _ body: () async throws(LoadTestError) -> CallOutcome
    ) async -> Result<CallOutcome, LoadTestError> {
        let sent = ContinuousClock.now
        record.sending(at: sent)
        record.calls[kind, default: 0] += 1
        do {
            let outcome = try await body()
            record.latency(since: start ?? sent, now: .now)
            return .success(outcome)
        } catch {
            failed(error)
            return .failure(error)
        }
    }

    /// One debit of one call.
    private mutating func call(_ account: PlannedAccount, due: ContinuousClock.Instant?) async {
        let id = nextID()
        let session = self.session
        switch await timed("authorize", from: due, { () async throws(LoadTestError) in
            try await session.authorize(key: account.key, usage: Self.callUsage, requestID: id, holdTTL: nil)
        }) {
        case .success(let outcome):
            decided(outcome)
            if outcome.allowed {
                expect(outcome, RunPlan.callCost, "the call", account.id, id)
                record.books.applied(account.id, id, net: -RunPlan.callCost, required: RunPlan.callCost != 0)
            }
        case .failure:
            record.books.uncertain(account.id, [id])
        }
    }

    /// A streamed LLM call: hold an estimate, report token batches, settle on what was reported.
    private mutating func stream(_ account: PlannedAccount, due: ContinuousClock.Instant?) async {
        let base = nextID()
        let batches = plan.configuration.reportsPerStream
        let estimate = [try! UsageItem(meter: RunPlan.tokenMeter, quantity: RunPlan.tokensPerBatch * Int64(max(1, batches)))]
        let session = self.session
        let holdRequest = base + "-h"
        var ids = [holdRequest]
        let hold: String
        switch await timed("authorize", from: due, { () async throws(LoadTestError) in
            try await session.authorize(key: account.key, usage: estimate, requestID: holdRequest, holdTTL: .seconds(120))
        }) {
        case .success(let outcome):
            decided(outcome)
            guard outcome.allowed else { return }
            guard let holdID = outcome.holdID else {
                failed(LoadTestError(.unexpectedResponse, "an allowed hold without a hold id"))
                record.books.uncertain(account.id, ids)
                return
            }
            hold = holdID
        case .failure:
            record.books.uncertain(account.id, ids)
            return
        }
        // Applied so far: the hold (no change of balance).
        var applied: [(id: String, required: Bool)] = [(holdRequest, true)]
        var failedStep = false
        var reported: Int64 = 0
        for batch in 0..<batches {
            let id = "\(base)-r\(batch + 1)"
            ids.append(id)
            switch await timed("report", from: nil, { () async throws(LoadTestError) in
                try await session.report(hold: hold, usage: Self.batchUsage, requestID: id)
            }) {
            case .success(let outcome):
                decided(outcome)
                if outcome.allowed {
                    expect(outcome, RunPlan.reportCost, "the report", account.id, id)
                    applied.append((id, RunPlan.reportCost != 0))
                    reported += 1
                }
            case .failure:
                failedStep = true
            }
            if failedStep { break }
        }
        let settleID = base + "-s"
        ids.append(settleID)
        var charged: Int64 = 0
        switch await timed("settle", from: nil, { () async throws(LoadTestError) in
            try await session.settle(hold: hold, usage: nil, requestID: settleID)
        }) {
        case .success(let outcome):
            decided(outcome)
            if outcome.allowed {
                applied.append((settleID, false))
                // A settle on what was reported charges the allowed reports, at the plan's price.
                // After a report whose outcome is unknown (an error may have been applied), the
                // settle's charge is unknown too: the stream goes to the uncertain books unchecked.
                charged = reported * RunPlan.reportCost
                if !failedStep { expect(outcome, charged, "the settle", account.id, settleID) }
            } else {
                failedStep = true
            }
        case .failure:
            failedStep = true
        }
        guard !failedStep else {
            record.books.uncertain(account.id, ids)
            return
        }
        // The stream's entries add up to what the settle says was charged on the hold in all.
        for (index, step) in applied.enumerated() {
            record.books.applied(account.id, step.id, net: index == 0 ? -charged : 0, required: step.required)
        }
        record.streams += 1
    }

    /// An operator's top-up of 1 credit.
    private mutating func topUp(_ account: PlannedAccount, due: ContinuousClock.Instant?) async {
        let id = nextID()
        let session = self.session
        let amount = RunPlan.topUpAmount
        switch await timed("topup", from: due, { () async throws(LoadTestError) in
            try await session.credit(account.id, amount: amount, requestID: id)
        }) {
        case .success(let outcome):
            if outcome.allowed {
                expect(outcome, amount.micros, "the top-up", account.id, id)
                record.books.applied(account.id, id, net: amount.micros, required: true)
            }
        case .failure:
            record.books.uncertain(account.id, [id])
        }
    }

    /// A coupon redemption.
    private mutating func redeem(_ account: PlannedAccount, code: String, due: ContinuousClock.Instant?) async {
        let session = self.session
        switch await timed("redeem", from: due, { () async throws(LoadTestError) in
            try await session.redeem(account.id, code: code)
        }) {
        case .success(let outcome):
            if outcome.allowed {
                guard let entry = outcome.entryID else {
                    failed(LoadTestError(.unexpectedResponse, "a redemption without its ledger entry id"))
                    record.books.uncertainCoupon(account.id)
                    return
                }
                // A redemption's entry has no caller's request id: the books know it by entry id.
                expect(outcome, RunPlan.couponAmount.micros, "the coupon redemption", account.id, Books.couponKey(entry))
                record.books.applied(account.id, Books.couponKey(entry), net: RunPlan.couponAmount.micros, required: true)
                record.redemptions += 1
            } else {
                record.denied["coupon_" + (outcome.reason ?? "refused"), default: 0] += 1
            }
        case .failure:
            record.books.uncertainCoupon(account.id)
        }
    }
}
