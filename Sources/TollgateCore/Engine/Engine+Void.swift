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
    /// queue was full.
    public var pendingVoids: (waiting: Int, dropped: Int) {
        caches.pendingVoids.withLock { ($0.queue.count, $0.dropped) }
    }

    /// Voids the unanswered decisions, oldest first, until Redis fails again. Returns how many
    /// were voided now. A void Redis refuses for good (the account is gone) is dropped.
    @discardableResult
    public func retryPendingVoids() async -> Int {
        var done = 0
        while let (account, requestID) = caches.pendingVoids.withLock({ $0.queue.first }) {
            do {
                try await void(account, requestID: requestID)
            } catch where error.code == .redisUnavailable {
                return done
            } catch {
                // account_not_found and the like: nothing to void.
            }
            caches.pendingVoids.withLock { pending in
                if let first = pending.queue.first, first.0 == account, first.1 == requestID { pending.queue.removeFirst() }
            }
            done += 1
        }
        return done
    }

    func noteUnanswered(_ function: String, _ id: AccountID, _ requestID: RequestID) {
        guard voidsUnansweredDecisions, Self.voidableFunctions.contains(function) else { return }
        caches.pendingVoids.withLock { $0.add(id, requestID) }
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
