import TollgateCore

/// A plain in-memory implementation of Tollgate's rules, written from docs/ARCHITECTURE.md,
/// to check the Lua engine against: the same operations, the same answers, exact Int64
/// arithmetic, and the clock given by the caller (I6).
///
/// Order of checks in a decision (I5): the API key (unknown_key, key_revoked), the account's
/// status (account_frozen), prices (unknown_meter), then the limits of the account and the
/// key (concurrency_limited, rate_limited, token_rate_limited, spend_cap_reached, in that
/// precedence), then credit (insufficient_credit). A refused call changes nothing; expiring
/// due holds and promotional credit, which every step on an account does first, is owed to the
/// clock, not the call.
///
/// Besides the answers it predicts the promotional part of every balance (ModelCredit.swift)
/// and every ledger entry each step writes (ModelLedger.swift). Its calendar
/// (ModelCalendar.swift), usage parsing and price lookup (ModelPricing.swift) are its own.
struct ReferenceModel: Sendable {
    /// The engine's clock, in ms since the epoch.
    var now: Int64 { didSet { periods = ModelPeriods(milliseconds: now) } }
    /// The UTC hour, day and month `now` falls in, by the model's own calendar.
    private(set) var periods: ModelPeriods
    var prices = ModelPriceBook()
    var accounts: [AccountID: ModelAccount] = [:]
    /// API key secrets: the account and key id each opens.
    var secrets: [String: (account: AccountID, key: String)] = [:]

    init(now: Int64) {
        self.now = now
        periods = ModelPeriods(milliseconds: now)
    }

    enum Target: Sendable {
        case key(secret: String)
        case account(AccountID)
    }

    enum Mode: Sendable {
        case debit
        case hold(ttl: Int64)
    }

    // MARK: Setup (operator steps; no holds expire)

    mutating func createAccount(_ id: AccountID, creditLimit: Int64) {
        precondition(accounts[id] == nil)
        accounts[id] = ModelAccount(creditLimit: creditLimit)
    }

    mutating func addKey(_ key: String, secret: String, to account: AccountID) {
        accounts[account]!.keys[key] = ModelKey()
        secrets[secret] = (account, key)
    }

    mutating func revokeKey(_ key: String, of account: AccountID) {
        accounts[account]!.keys[key]!.revoked = true
    }

    /// Sets a price, or removes it (nil).
    mutating func setPrice(meter: String, model: String?, _ price: ModelPrice?) {
        prices.set(meter: meter, model: model, price)
    }

    /// Sets (value) or removes (nil) limits of the account or one of its keys. Counters and
    /// window states stay as they are.
    mutating func setLimits(_ account: AccountID, key: String?, _ changes: [LimitName: Int64?]) {
        func apply(_ scope: inout ModelScope) {
            for (name, value) in changes { scope.limits[name] = value }
        }
        if let key { apply(&accounts[account]!.keys[key]!.scope) } else { apply(&accounts[account]!.scope) }
    }

    // MARK: Account steps

    /// Reads an account, expiring due holds and promotional credit first.
    mutating func account(_ id: AccountID) -> AccountFigures {
        accounts[id]!.expireDue(now: now, periods: periods)
        return accounts[id]!.figures
    }

    /// Freezes or unfreezes an account; a closed account stays closed (account_closed), and
    /// nothing expires then.
    mutating func setStatus(_ id: AccountID, _ status: AccountStatus) throws(ModelError) -> AccountFigures {
        if accounts[id]!.status == .closed { throw .refused("account_closed") }
        accounts[id]!.expireDue(now: now, periods: periods)
        accounts[id]!.status = status
        return accounts[id]!.figures
    }

    /// Closes an account (an operator's step with no API yet: the harness writes the status).
    /// Nothing expires, nothing is written to the ledger.
    mutating func close(_ id: AccountID) {
        accounts[id]!.status = .closed
    }

    /// Runs a mutation once per request id (I3): a retry of the same operation gets the first
    /// answer back, marked replayed, and changes nothing; another operation under the same id
    /// is an error. Refusals are not remembered, so a retry is decided afresh.
    private mutating func once(
        _ id: AccountID, _ requestID: RequestID, _ operation: ModelOperation,
        _ body: (inout ModelAccount, Int64, ModelPeriods) -> DecisionRecord
    ) throws(ModelError) -> DecisionRecord {
        if let first = accounts[id]!.remembered[requestID.rawValue] {
            guard first.operation == operation else { throw .idempotencyConflict }
            var answer = first.answer
            answer.replayed = true
            return answer
        }
        let (now, periods) = (self.now, self.periods)
        let answer = body(&accounts[id]!, now, periods)
        if answer.allowed { accounts[id]!.remembered[requestID.rawValue] = (operation, answer) }
        return answer
    }

    /// Adds credit; only an adjustment may be negative, and not below −credit limit (I1).
    /// Frozen accounts still take credit, closed ones none (refused before anything expires).
    /// A grant is promotional credit expiring at `expires` (nil: never); one whose expiry has
    /// come already is refused (expired). A negative adjustment takes paid credit: it may take
    /// neither available credit nor the paid part of the balance below −credit limit, since
    /// promotional credit expires (docs/BILLING.md).
    mutating func credit(
        _ id: AccountID, amount: Int64, kind: CreditKind, expires: Int64? = nil, requestID: RequestID
    ) throws(ModelError) -> DecisionRecord {
        try once(id, requestID, .credit(kind, amount, expires: expires)) { a, now, periods in
            if a.status == .closed { return a.denied(.accountClosed) }
            a.expireDue(now: now, periods: periods)
            if let expires, expires <= now { return a.denied(.expired) }
            if amount < 0 && (!a.covers(-amount) || a.balance - a.promotional.total + amount < -a.creditLimit) {
                return a.denied(.insufficientCredit)
            }
            a.balance += amount
            if kind == .grant { a.promotional.add(amount, expiring: expires ?? neverExpires) }
            a.record(ModelEntry(kind: kind.rawValue, amount: amount, heldDelta: 0, time: now, requestID: requestID.rawValue,
                                expires: kind == .grant ? expires : nil))
            return a.allowed(amount: amount)
        }
    }

    /// An operator's plain debit: status and credit apply, no price or limit.
    mutating func debit(_ id: AccountID, amount: Int64, requestID: RequestID) throws(ModelError) -> DecisionRecord {
        try once(id, requestID, .debit(amount)) { a, now, periods in
            a.expireDue(now: now, periods: periods)
            if a.status != .active { return a.denied(a.status == .frozen ? .accountFrozen : .accountClosed) }
            guard a.covers(amount) else { return a.denied(.insufficientCredit) }
            _ = a.takeCredit(amount)
            a.record(ModelEntry(kind: "debit", amount: -amount, heldDelta: 0, time: now, requestID: requestID.rawValue))
            return a.allowed(amount: amount)
        }
    }

    /// A plain hold: reserves an amount; no limit applies.
    mutating func hold(_ id: AccountID, amount: Int64, ttl: Int64, requestID: RequestID) throws(ModelError) -> DecisionRecord {
        try once(id, requestID, .hold(amount: amount, ttl: ttl)) { a, now, periods in
            a.expireDue(now: now, periods: periods)
            if a.status != .active { return a.denied(a.status == .frozen ? .accountFrozen : .accountClosed) }
            guard a.covers(amount) else { return a.denied(.insufficientCredit) }
            let hold = a.open(ModelHold(sequence: a.lastHoldSequence + 1, requestID: requestID.rawValue, expiresAt: now + ttl,
                                        countsOnLimits: false, key: nil, reserved: amount, tokensReserved: 0), now: now)
            var answer = a.allowed(amount: amount)
            answer.holdSequence = hold.sequence
            answer.holdExpiresAt = hold.expiresAt
            return answer
        }
    }

    /// Charges a plain amount against a hold (beyond it: status, limits and credit apply).
    mutating func capture(_ id: AccountID, hold sequence: Int64, amount: Int64, requestID: RequestID) throws(ModelError) -> DecisionRecord {
        try once(id, requestID, .capture(hold: sequence, amount: amount)) { a, now, periods in
            a.expireDue(now: now, periods: periods)
            guard a.holds[sequence] != nil else { return a.denied(.holdNotFound) }
            if let reason = a.charge(hold: sequence, [HoldLine(cost: amount)], tokens: 0, enforce: true, now: now, periods: periods,
                                     requestID: requestID.rawValue) {
                return a.denied(reason)
            }
            return a.answer(onHold: sequence, amount: amount)
        }
    }

    /// Closes a hold, freeing what it still reserves.
    mutating func release(_ id: AccountID, hold sequence: Int64, requestID: RequestID) throws(ModelError) -> DecisionRecord {
        try once(id, requestID, .release(hold: sequence)) { a, now, periods in
            a.expireDue(now: now, periods: periods)
            guard let hold = a.holds[sequence] else { return a.denied(.holdNotFound) }
            let freed = a.close(hold: sequence, now: now, periods: periods, requestID: requestID.rawValue)
            var answer = a.allowed(amount: freed)
            answer.holdSequence = sequence
            answer.capturedOnHold = hold.net
            return answer
        }
    }

    // MARK: The gateway's decision

    /// Authorizes a call: by API key or account, debit now or hold the estimate.
    mutating func authorize(
        _ target: Target, usage: [ModelUsageItem], requestID: RequestID, mode: Mode
    ) throws(ModelError) -> DecisionRecord {
        let id: AccountID
        var keyID: String?
        switch target {
        case .account(let account):
            id = account
        case .key(let secret):
            guard let known = secrets[secret] else {
                return DecisionRecord(allowed: false, reason: .unknownKey, account: nil)
            }
            (id, keyID) = known
        }
        let ttl: Int64
        switch mode {
        case .debit: ttl = 0
        case .hold(let milliseconds): ttl = milliseconds
        }
        let operation = ModelOperation.authorize(hold: ttl > 0, ttl: ttl, key: keyID, usage: ModelOperation.usageList(usage))
        let prices = self.prices
        return try once(id, requestID, operation) { a, now, periods in
            a.expireDue(now: now, periods: periods)
            if let keyID, a.keys[keyID]!.revoked { return a.denied(.keyRevoked) }
            if a.status != .active { return a.denied(a.status == .frozen ? .accountFrozen : .accountClosed) }
            guard let items = prices.priced(usage) else { return a.denied(.unknownMeter) }

            var carries = a.carries
            let lineCosts: [Int64] = ttl == 0
                ? items.map { carries.charge($0.quantity, of: $0.name, at: $0.price) }
                : items.map { $0.price.estimate($0.quantity) }
            let cost = lineCosts.reduce(0, +)
            let tokens = tokenCount(items)
            let need = LimitNeed(holdSlots: ttl > 0 ? 1 : 0, requests: 1, tokens: tokens, spend: cost)
            let verdict = evaluateLimits(a.scopes(key: keyID), need, now: now, periods: periods)
            if let denial = verdict.denial {
                return a.denied(denial.kind.reason, retry: denial.retry, limits: verdict.rowsNow)
            }
            guard a.covers(cost) else { return a.denied(.insufficientCredit, limits: verdict.rowsNow) }

            a.updateScopes(key: keyID) { $0.consume(need, now: now, periods: periods) }
            if ttl == 0 {
                a.carries = carries
                // One debit entry per item, promotional credit first.
                for (item, lineCost) in zip(items, lineCosts) {
                    _ = a.takeCredit(lineCost)
                    a.record(ModelEntry(kind: "debit", amount: -lineCost, heldDelta: 0, time: now, requestID: requestID.rawValue,
                                        usage: .init(meter: item.meter, model: item.model, quantity: item.quantity, key: keyID)))
                }
                var answer = a.allowed(amount: cost)
                answer.limits = verdict.rowsAfter
                return answer
            }
            var hold = ModelHold(sequence: a.lastHoldSequence + 1, requestID: requestID.rawValue, expiresAt: now + ttl,
                                 countsOnLimits: true, key: keyID, reserved: cost, tokensReserved: tokens)
            hold.spend.count(cost, periods)
            hold = a.open(hold, now: now)
            var answer = a.allowed(amount: cost)
            answer.holdSequence = hold.sequence
            answer.holdExpiresAt = hold.expiresAt
            answer.limits = verdict.rowsAfter
            return answer
        }
    }

    /// Charges a usage batch against a hold as it comes: from what the hold reserves, then
    /// beyond it within every limit and the credit, or refused.
    mutating func report(_ id: AccountID, hold sequence: Int64, usage: [ModelUsageItem], requestID: RequestID) throws(ModelError) -> DecisionRecord {
        let prices = self.prices
        return try once(id, requestID, .report(hold: sequence, usage: ModelOperation.usageList(usage))) { a, now, periods in
            a.expireDue(now: now, periods: periods)
            guard a.holds[sequence] != nil else { return a.denied(.holdNotFound) }
            guard let items = prices.priced(usage) else { return a.denied(.unknownMeter) }
            let (before, carriesBefore) = (a.holds[sequence]!, a.carries)
            let key = before.key
            var lines: [HoldLine] = []
            for item in items {
                let cost = a.carries.charge(item.quantity, of: item.name, at: item.price)
                lines.append(HoldLine(cost: cost, usage: .init(meter: item.meter, model: item.model, quantity: item.quantity, key: key)))
                a.holds[sequence]!.reported[item.name, default: .init(meter: item.meter, model: item.model, quantity: 0, price: item.price)]
                    .quantity += item.quantity
                a.holds[sequence]!.reported[item.name]!.charged += cost
            }
            if let reason = a.charge(hold: sequence, lines, tokens: tokenCount(items), enforce: true, now: now, periods: periods,
                                     requestID: requestID.rawValue) {
                a.holds[sequence] = before
                a.carries = carriesBefore
                return a.denied(reason)
            }
            return a.answer(onHold: sequence, amount: lines.reduce(0) { $0 + $1.cost })
        }
    }

    /// Settles a hold. With usage (the call's total final usage) it charges what the reports
    /// did not, at today's price, and refunds what they overcharged, at the price of the first
    /// report but never more than the reports of that item actually charged (a price cut
    /// mid-stream must not refund at the old price); without, it settles on what was reported. Then it closes the hold. Only the
    /// account's status (for a charge beyond the hold) and its credit can refuse a settle.
    mutating func settle(_ id: AccountID, hold sequence: Int64, usage: [ModelUsageItem]?, requestID: RequestID) throws(ModelError) -> DecisionRecord {
        let prices = self.prices
        return try once(id, requestID, .settle(hold: sequence, usage: usage.map(ModelOperation.usageList))) { a, now, periods in
            a.expireDue(now: now, periods: periods)
            guard let hold = a.holds[sequence] else { return a.denied(.holdNotFound) }
            if let usage {
                guard let items = prices.priced(usage) else { return a.denied(.unknownMeter) }
                var final: [String: Int64] = [:]
                var firstOfName: [PricedItem] = []
                for item in items {
                    if final[item.name] == nil { firstOfName.append(item) }
                    final[item.name, default: 0] += item.quantity
                }
                var carries = a.carries
                var lines: [HoldLine] = []
                var kept: [String: Int64] = [:]
                func entryUsage(_ meter: String, _ model: String?, _ quantity: Int64) -> ModelEntry.Usage {
                    .init(meter: meter, model: model, quantity: quantity, key: hold.key)
                }
                func boundedRefund(_ name: String, _ refund: Int64, _ reported: ModelHold.Reported, quantity: Int64) -> HoldLine {
                    let bounded = max(refund, -reported.charged)
                    kept[name, default: 0] += bounded - refund
                    return HoldLine(cost: bounded, usage: entryUsage(reported.meter, reported.model, quantity))
                }
                for item in firstOfName {
                    let reported = hold.reported[item.name]
                    let delta = final[item.name]! - (reported?.quantity ?? 0)
                    if delta > 0 {
                        lines.append(HoldLine(cost: carries.charge(delta, of: item.name, at: item.price),
                                              usage: entryUsage(item.meter, item.model, delta)))
                    } else if delta < 0, let reported {
                        lines.append(boundedRefund(item.name, carries.charge(delta, of: item.name, at: reported.price), reported,
                                                   quantity: delta))
                    }
                }
                for (name, reported) in hold.reported where final[name] == nil {
                    lines.append(boundedRefund(name, carries.charge(-reported.quantity, of: name, at: reported.price), reported,
                                               quantity: -reported.quantity))
                }
                let tokens = tokenCount(items) - hold.tokensUsed
                if let reason = a.charge(hold: sequence, lines, tokens: tokens, enforce: false, now: now, periods: periods,
                                         requestID: requestID.rawValue) {
                    return a.denied(reason)
                }
                a.carries = carries
                a.refundsKept.merge(kept, uniquingKeysWith: +)
            }
            let net = a.holds[sequence]!.net
            a.close(hold: sequence, now: now, periods: periods, requestID: requestID.rawValue)
            var answer = a.allowed(amount: net)
            answer.holdSequence = sequence
            answer.capturedOnHold = net
            return answer
        }
    }
}

extension ModelAccount {
    /// Opens a hold with the next sequence number, reserving its estimate (a `hold` entry).
    mutating func open(_ hold: ModelHold, now: Int64) -> ModelHold {
        lastHoldSequence = hold.sequence
        holds[hold.sequence] = hold
        held += hold.reserved
        record(ModelEntry(kind: "hold", amount: 0, heldDelta: hold.reserved, time: now, requestID: hold.requestID, hold: hold.sequence))
        return hold
    }

    /// The answer to a step on an open hold.
    func answer(onHold sequence: Int64, amount: Int64) -> DecisionRecord {
        var answer = allowed(amount: amount)
        answer.holdSequence = sequence
        answer.capturedOnHold = holds[sequence]!.net
        return answer
    }
}
