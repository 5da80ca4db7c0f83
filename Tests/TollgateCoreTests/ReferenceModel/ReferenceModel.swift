import TollgateCore

/// A plain in-memory implementation of Tollgate's rules, written from the issue and DESIGN.md,
/// to check the Lua engine against: the same operations, the same answers, exact Int64
/// arithmetic, and the clock given by the caller (I6).
///
/// Order of checks in a decision (I5): the API key (unknown_key, key_revoked), the account's
/// status (account_frozen), prices (unknown_meter), then the limits of the account and the
/// key (concurrency_limited, rate_limited, token_rate_limited, spend_cap_reached, in that
/// precedence), then credit (insufficient_credit). A refused call changes nothing; expiring
/// due holds, which every step on an account does first, is owed to the clock, not the call.
struct ReferenceModel: Sendable {
    /// The engine's clock, in ms since the epoch.
    var now: Int64
    var prices = ModelPriceBook()
    var accounts: [AccountID: ModelAccount] = [:]
    /// API key secrets: the account and key id each opens.
    var secrets: [String: (account: AccountID, key: String)] = [:]

    init(now: Int64) { self.now = now }

    var periods: SpendPeriods { SpendPeriods(milliseconds: now) }

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

    mutating func setPrice(_ key: PriceKey, _ price: ModelPrice) {
        prices.prices[key] = price
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

    /// Reads an account, expiring due holds first.
    mutating func account(_ id: AccountID) -> AccountFigures {
        accounts[id]!.expireHolds(now: now, periods: periods)
        return accounts[id]!.figures
    }

    mutating func setStatus(_ id: AccountID, _ status: AccountStatus) -> AccountFigures {
        accounts[id]!.expireHolds(now: now, periods: periods)
        accounts[id]!.status = status
        return accounts[id]!.figures
    }

    /// Runs a mutation once per request id (I3): a retry of the same operation gets the first
    /// answer back, marked replayed, and changes nothing; another operation under the same id
    /// is an error. Refusals are not remembered, so a retry is decided afresh.
    private mutating func once(
        _ id: AccountID, _ requestID: RequestID, _ operation: ModelOperation,
        _ body: (inout ModelAccount, Int64, SpendPeriods) -> DecisionRecord
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
    /// Frozen accounts still take credit.
    mutating func credit(_ id: AccountID, amount: Int64, kind: CreditKind, requestID: RequestID) throws(ModelError) -> DecisionRecord {
        try once(id, requestID, .credit(kind, amount)) { a, now, periods in
            a.expireHolds(now: now, periods: periods)
            if amount < 0 && !a.covers(-amount) { return a.denied(.insufficientCredit) }
            a.balance += amount
            return a.allowed(amount: amount)
        }
    }

    /// An operator's plain debit: status and credit apply, no price or limit.
    mutating func debit(_ id: AccountID, amount: Int64, requestID: RequestID) throws(ModelError) -> DecisionRecord {
        try once(id, requestID, .debit(amount)) { a, now, periods in
            a.expireHolds(now: now, periods: periods)
            if a.status != .active { return a.denied(a.status == .frozen ? .accountFrozen : .accountClosed) }
            guard a.covers(amount) else { return a.denied(.insufficientCredit) }
            a.balance -= amount
            return a.allowed(amount: amount)
        }
    }

    /// A plain hold: reserves an amount; no limit applies.
    mutating func hold(_ id: AccountID, amount: Int64, ttl: Int64, requestID: RequestID) throws(ModelError) -> DecisionRecord {
        try once(id, requestID, .hold(amount: amount, ttl: ttl)) { a, now, periods in
            a.expireHolds(now: now, periods: periods)
            if a.status != .active { return a.denied(a.status == .frozen ? .accountFrozen : .accountClosed) }
            guard a.covers(amount) else { return a.denied(.insufficientCredit) }
            let hold = a.open(ModelHold(sequence: a.lastHoldSequence + 1, requestID: requestID.rawValue, expiresAt: now + ttl,
                                        countsOnLimits: false, key: nil, reserved: amount, tokensReserved: 0))
            var answer = a.allowed(amount: amount)
            answer.holdSequence = hold.sequence
            answer.holdExpiresAt = hold.expiresAt
            return answer
        }
    }

    /// Charges a plain amount against a hold (beyond it: status, limits and credit apply).
    mutating func capture(_ id: AccountID, hold sequence: Int64, amount: Int64, requestID: RequestID) throws(ModelError) -> DecisionRecord {
        try once(id, requestID, .capture(hold: sequence, amount: amount)) { a, now, periods in
            a.expireHolds(now: now, periods: periods)
            guard a.holds[sequence] != nil else { return a.denied(.holdNotFound) }
            if let reason = a.charge(hold: sequence, [HoldLine(cost: amount)], tokens: 0, enforce: true, now: now, periods: periods) {
                return a.denied(reason)
            }
            return a.answer(onHold: sequence, amount: amount)
        }
    }

    /// Closes a hold, freeing what it still reserves.
    mutating func release(_ id: AccountID, hold sequence: Int64, requestID: RequestID) throws(ModelError) -> DecisionRecord {
        try once(id, requestID, .release(hold: sequence)) { a, now, periods in
            a.expireHolds(now: now, periods: periods)
            guard let hold = a.holds[sequence] else { return a.denied(.holdNotFound) }
            let freed = a.close(hold: sequence, now: now, periods: periods)
            var answer = a.allowed(amount: freed)
            answer.holdSequence = sequence
            answer.capturedOnHold = hold.net
            return answer
        }
    }

    // MARK: The gateway's decision

    /// Authorizes a call: by API key or account, debit now or hold the estimate.
    mutating func authorize(
        _ target: Target, usage: [UsageItem], requestID: RequestID, mode: Mode
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
            a.expireHolds(now: now, periods: periods)
            if let keyID, a.keys[keyID]!.revoked { return a.denied(.keyRevoked) }
            if a.status != .active { return a.denied(a.status == .frozen ? .accountFrozen : .accountClosed) }
            guard let items = prices.priced(usage) else { return a.denied(.unknownMeter) }

            var carries = a.carries
            let cost: Int64 = ttl == 0
                ? items.reduce(0) { $0 + carries.charge($1.quantity, of: $1.name, at: $1.price) }
                : items.reduce(0) { $0 + $1.price.estimate($1.quantity) }
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
                a.balance -= cost
                var answer = a.allowed(amount: cost)
                answer.limits = verdict.rowsAfter
                return answer
            }
            var hold = ModelHold(sequence: a.lastHoldSequence + 1, requestID: requestID.rawValue, expiresAt: now + ttl,
                                 countsOnLimits: true, key: keyID, reserved: cost, tokensReserved: tokens)
            hold.spend.count(cost, periods)
            hold = a.open(hold)
            var answer = a.allowed(amount: cost)
            answer.holdSequence = hold.sequence
            answer.holdExpiresAt = hold.expiresAt
            answer.limits = verdict.rowsAfter
            return answer
        }
    }

    /// Charges a usage batch against a hold as it comes: from what the hold reserves, then
    /// beyond it within every limit and the credit, or refused.
    mutating func report(_ id: AccountID, hold sequence: Int64, usage: [UsageItem], requestID: RequestID) throws(ModelError) -> DecisionRecord {
        let prices = self.prices
        return try once(id, requestID, .report(hold: sequence, usage: ModelOperation.usageList(usage))) { a, now, periods in
            a.expireHolds(now: now, periods: periods)
            guard a.holds[sequence] != nil else { return a.denied(.holdNotFound) }
            guard let items = prices.priced(usage) else { return a.denied(.unknownMeter) }
            let (before, carriesBefore) = (a.holds[sequence]!, a.carries)
            var lines: [HoldLine] = []
            for item in items {
                let cost = a.carries.charge(item.quantity, of: item.name, at: item.price)
                lines.append(HoldLine(cost: cost))
                a.holds[sequence]!.reported[item.name, default: .init(quantity: 0, price: item.price)].quantity += item.quantity
                a.holds[sequence]!.reported[item.name]!.charged += cost
            }
            if let reason = a.charge(hold: sequence, lines, tokens: tokenCount(items), enforce: true, now: now, periods: periods) {
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
    mutating func settle(_ id: AccountID, hold sequence: Int64, usage: [UsageItem]?, requestID: RequestID) throws(ModelError) -> DecisionRecord {
        let prices = self.prices
        return try once(id, requestID, .settle(hold: sequence, usage: usage.map(ModelOperation.usageList))) { a, now, periods in
            a.expireHolds(now: now, periods: periods)
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
                func boundedRefund(_ name: String, _ refund: Int64, _ reported: ModelHold.Reported) -> HoldLine {
                    let bounded = max(refund, -reported.charged)
                    kept[name, default: 0] += bounded - refund
                    return HoldLine(cost: bounded)
                }
                for item in firstOfName {
                    let reported = hold.reported[item.name]
                    let delta = final[item.name]! - (reported?.quantity ?? 0)
                    if delta > 0 {
                        lines.append(HoldLine(cost: carries.charge(delta, of: item.name, at: item.price)))
                    } else if delta < 0, let reported {
                        lines.append(boundedRefund(item.name, carries.charge(delta, of: item.name, at: reported.price), reported))
                    }
                }
                for (name, reported) in hold.reported where final[name] == nil {
                    lines.append(boundedRefund(name, carries.charge(-reported.quantity, of: name, at: reported.price), reported))
                }
                let tokens = tokenCount(items) - hold.tokensUsed
                if let reason = a.charge(hold: sequence, lines, tokens: tokens, enforce: false, now: now, periods: periods) {
                    return a.denied(reason)
                }
                a.carries = carries
                a.refundsKept.merge(kept, uniquingKeysWith: +)
            }
            let net = a.holds[sequence]!.net
            a.close(hold: sequence, now: now, periods: periods)
            var answer = a.allowed(amount: net)
            answer.holdSequence = sequence
            answer.capturedOnHold = net
            return answer
        }
    }
}

extension ModelAccount {
    /// Opens a hold with the next sequence number, reserving its estimate.
    mutating func open(_ hold: ModelHold) -> ModelHold {
        lastHoldSequence = hold.sequence
        holds[hold.sequence] = hold
        held += hold.reserved
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
