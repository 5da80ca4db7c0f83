import TollgateRedis

extension Engine {
    /// The steps a void can undo (`lua/65_void.lua`).
    static let voidableFunctions: Set<String> = ["authorize", "debit", "hold"]

    /// Voids a decision by its request id: if it applied, a debit is given back with `void`
    /// ledger entries and a hold is released; either way the request id is spent, so the
    /// original arriving later is refused (`idempotency_conflict`) and changes nothing.
    /// Voiding twice replays the first answer.
    @discardableResult
    public func void(_ id: AccountID, requestID: RequestID) async throws(TollgateError) -> Decision {
        try await step("void", id, requestID, [requestID.rawValue])
    }

    /// Charges a call that was allowed while Redis was unreachable (`--fail-open`) as
    /// `authorize` in debit mode would have, with the same request id and key: whichever of the
    /// two reaches Redis second is a replay, so the call is charged exactly once. No limit or
    /// balance refuses it; only an unknown meter does.
    public func journalDebit(
        _ id: AccountID, keyID: String, usage: [UsageItem], requestID: RequestID
    ) async throws(TollgateError) -> Decision {
        guard !usage.isEmpty else { throw TollgateError(.invalidArgument, "usage must name at least one item") }
        let prices = try await currentPrices()
        return try await step("journal_debit", id, requestID,
                              [requestID.rawValue, keyID] + usageArguments(usage, prices))
    }

    /// How many unanswered decisions wait to be voided, and how many were dropped because the
    /// store was full.
    public var pendingVoids: (waiting: Int, dropped: Int) {
        pendingVoidStore.counts
    }

    /// Voids the unanswered decisions, oldest first, until Redis fails again. Returns how many
    /// were voided now. A void Redis refuses for good (the account is gone) is dropped.
    @discardableResult
    public func retryPendingVoids() async -> Int {
        var done = 0
        while let pending = pendingVoidStore.first() {
            do {
                try await void(pending.account, requestID: pending.requestID)
            } catch where error.code == .redisUnavailable {
                return done
            } catch {
                // account_not_found and the like: nothing to void.
            }
            pendingVoidStore.removeFirst(pending)
            done += 1
        }
        return done
    }

    /// Voids a decision once Redis answers again: for a caller that answered a call as refused
    /// after the engine gave up on it, where the engine itself does not void
    /// (`voidsUnansweredDecisions` false: `--fail-open` when the call could not be journaled).
    public func voidLater(_ id: AccountID, requestID: RequestID) {
        pendingVoidStore.add(PendingVoid(account: id, requestID: requestID))
    }

    func noteUnanswered(_ function: String, _ id: AccountID, _ requestID: RequestID) {
        guard voidsUnansweredDecisions, Self.voidableFunctions.contains(function) else { return }
        voidLater(id, requestID: requestID)
    }
}

extension Engine {
    /// The key and account of an API key secret if this engine has seen it, without asking
    /// Redis (for `--fail-open`, when Redis cannot be asked).
    public func cachedKey(secret: String) -> (key: KeyID, account: AccountID)? {
        caches.keys.withLock { $0[APIKeySecret.hash(secret)] }.map { (key: $0.0, account: $0.1) }
    }
}

extension Decision {
    /// A call allowed while Redis could not answer (`--fail-open`): no account figures.
    public static var allowedWithoutRedis: Decision { Decision(allowed: true, reason: nil, account: nil) }
}
