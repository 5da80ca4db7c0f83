import TollgateCore

// Holds (I4): credit reserved for a call in flight. Charges against a hold use up what it
// still reserves first, then draw on available credit. A hold made by authorize counts on
// the limits of its account and key: an open-hold slot, its token estimate on the token rate,
// its estimate as spend. Closing it (release, settle, expiry) gives back what it still
// reserves, the tokens it did not use and its slot.

/// One amount charged (positive) or refunded (negative) against a hold, and the usage it is
/// for (nil: a plain capture).
struct HoldLine: Sendable {
    var cost: Int64
    var usage: ModelEntry.Usage? = nil
}

extension ModelAccount {
    /// Charges lines against a hold; `tokens` is the change in tokens the call used.
    ///
    /// Beyond the hold, the account must be active. With `enforce` (reports, captures), the
    /// part beyond what the hold reserves (charges less refunds) and the tokens beyond its
    /// estimate must pass every limit; without (a settle: usage already delivered) they are
    /// counted unchecked. The balance is always enforced (I1). Refused: nothing changes.
    ///
    /// Written line by line, refunds first (so no balance in between is lower than the final
    /// one): each refund gives back as promotional credit what the hold's charges took of it,
    /// each charge uses what the hold still reserves first and spends promotional credit first.
    mutating func charge(
        hold sequence: Int64, _ lines: [HoldLine], tokens: Int64, enforce: Bool, now: Int64, periods: ModelPeriods,
        requestID: String
    ) -> DenialReason? {
        var hold = holds[sequence]!
        let refunds = lines.filter { $0.cost < 0 }.reduce(0) { $0 - $1.cost }
        let charges = lines.filter { $0.cost > 0 }.reduce(0) { $0 + $1.cost }
        let fromHold = min(charges, hold.remaining)
        let beyond = charges - fromHold
        let extraTokens = max(0, hold.tokensUsed + tokens - hold.tokensReserved) - max(0, hold.tokensUsed - hold.tokensReserved)
        let limitScopes = hold.countsOnLimits ? scopes(key: hold.key) : []

        if beyond > refunds {
            if status == .frozen { return .accountFrozen }
            if status != .active { return .accountClosed }
        }
        if enforce {
            let need = LimitNeed(tokens: max(0, extraTokens), spend: max(0, beyond - refunds))
            if let denial = evaluateLimits(limitScopes, need, now: now, periods: periods).denial {
                return denial.kind.reason
            }
        }
        guard covers(beyond - refunds) else { return .insufficientCredit }

        if hold.countsOnLimits {
            if beyond > 0 { hold.spend.count(beyond, periods) }
            let back = hold.spend.takeBack(upTo: refunds, periods)
            updateScopes(key: hold.key) { scope in
                if enforce {
                    scope.consume(LimitNeed(tokens: max(0, extraTokens)), now: now, periods: periods)
                } else {
                    scope.adjustTokens(extraTokens, now: now)
                }
                if beyond > 0 { scope.spend.count(beyond, periods) }
                if refunds > 0 { scope.spend.takeBack(back, periods) }
            }
        }
        var left = hold.remaining
        for line in lines.sorted(by: { $0.cost < $1.cost }) where line.cost != 0 || line.usage != nil {
            var heldPart: Int64 = 0
            if line.cost >= 0 {
                heldPart = min(line.cost, left)
                left -= heldPart
                let (used, latest) = takeCredit(line.cost)
                if used > 0 {
                    hold.promotionalUsed += used
                    hold.promotionalLatestExpiry = max(hold.promotionalLatestExpiry, latest)
                }
            } else {
                let back = -line.cost
                let promotionalPart = min(back, hold.promotionalUsed)
                if promotionalPart > 0 {
                    promotional.add(promotionalPart, expiring: hold.promotionalLatestExpiry)
                    hold.promotionalUsed -= promotionalPart
                }
                balance += back
            }
            held -= heldPart
            record(ModelEntry(kind: line.cost < 0 ? "refund" : "capture", amount: -line.cost, heldDelta: -heldPart, time: now,
                              requestID: requestID, hold: sequence, usage: line.usage))
        }
        precondition(left == hold.remaining - fromHold)
        hold.charged += charges
        hold.net += charges - refunds
        hold.tokensUsed += tokens
        holds[sequence] = hold
        return nil
    }

    /// Closes a hold: frees what it still reserves, gives back its slot, the tokens it did
    /// not use and the spend it counted for what it did not charge. Returns what was freed.
    /// Writes a `release` (or, by the clock, `expire`) entry under `requestID`.
    @discardableResult
    mutating func close(hold sequence: Int64, now: Int64, periods: ModelPeriods, kind: String = "release", requestID: String) -> Int64 {
        guard var hold = holds.removeValue(forKey: sequence) else { preconditionFailure("no hold \(sequence)") }
        let rest = hold.remaining
        if hold.countsOnLimits {
            let back = hold.spend.takeBack(upTo: rest, periods)
            let unusedTokens = max(0, hold.tokensReserved - hold.tokensUsed)
            updateScopes(key: hold.key) { scope in
                scope.closeHold()
                scope.adjustTokens(-unusedTokens, now: now)
                scope.spend.takeBack(back, periods)
            }
        }
        held -= rest
        record(ModelEntry(kind: kind, amount: 0, heldDelta: -rest, time: now, requestID: requestID, hold: sequence))
        return rest
    }

    /// What every step on an account owes the clock first: the holds whose TTL has passed
    /// expire (each with an `expire` entry under its own request id), then the promotional
    /// credit that has reached its expiry (after the holds, so what they gave back can go too).
    mutating func expireDue(now: Int64, periods: ModelPeriods) {
        // Soonest expiry first; holds due at the same moment in the order a Redis sorted set
        // keeps equal scores (by the member's bytes: the sequence as decimal text).
        let due = holds.values.filter { $0.expiresAt <= now }
            .sorted { ($0.expiresAt, String($0.sequence)) < ($1.expiresAt, String($1.sequence)) }
        for sequence in due.map(\.sequence) {
            close(hold: sequence, now: now, periods: periods, kind: "expire", requestID: holds[sequence]!.requestID)
            expiredHolds += 1
        }
        expireGrants(now: now)
    }
}
