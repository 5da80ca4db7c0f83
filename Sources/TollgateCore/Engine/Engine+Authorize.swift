/// Who a gateway call is for.
public enum AuthorizeTarget: Sendable, Hashable {
    /// The end user's API key secret.
    case key(secret: String)
    /// An account, for gateways that identify callers themselves.
    case account(AccountID)
}

/// What an allowed call does to the account.
public enum AuthorizeMode: Sendable, Hashable {
    /// Charge the usage now.
    case debit
    /// Reserve the usage as an estimate, to be reported and settled; expires after `ttl`.
    case hold(ttl: Duration)
}

extension Engine {
    /// The gateway's question, answered in one atomic step (I5): key and account status,
    /// request-rate, token-rate and concurrency limits, spend caps and balance, on the
    /// account and on the key. Allowed, it debits the cost (or reserves it as a hold);
    /// refused, nothing changes but deny counters.
    public func authorize(
        _ target: AuthorizeTarget, usage: [UsageItem], requestID: RequestID, mode: AuthorizeMode = .debit
    ) async throws(TollgateError) -> Decision {
        guard !usage.isEmpty else { throw TollgateError(.invalidArgument, "usage must name at least one item") }
        let account: AccountID
        var keyID = ""
        var keyHash = ""
        switch target {
        case .account(let id):
            account = id
        case .key(let secret):
            guard secret.utf8.count <= 256, let resolved = try await resolve(secret: secret) else {
                return Decision(allowed: false, reason: .unknownKey, account: nil)
            }
            account = resolved.account
            keyID = resolved.key.rawValue
            keyHash = resolved.hash
        }
        let (modeName, ttl): (String, Int64)
        switch mode {
        case .debit: (modeName, ttl) = ("debit", 0)
        case .hold(let duration): (modeName, ttl) = ("hold", try Self.holdTTL(duration))
        }
        let prices = try await currentPrices()
        return try await step("authorize", account, requestID,
                              [modeName, String(ttl), requestID.rawValue, keyID, keyHash] + usageArguments(usage, prices))
    }

    /// Charges a usage batch against a hold as it arrives (one per streamed token batch, say).
    /// What the hold still reserves pays first; beyond it the batch must pass every limit and
    /// the balance, or it is refused and the gateway should cut the stream.
    public func report(_ hold: HoldID, usage: [UsageItem], requestID: RequestID) async throws(TollgateError) -> Decision {
        guard !usage.isEmpty else { throw TollgateError(.invalidArgument, "usage must name at least one item") }
        let prices = try await currentPrices()
        return try await step("report", hold.account, requestID,
                              [String(hold.sequence), requestID.rawValue] + usageArguments(usage, prices))
    }

    /// Settles a hold. With `usage` (the call's total final usage) it charges what reports did
    /// not, or refunds what they overcharged; without, it settles on what was reported. Then it
    /// releases the rest of the hold and the token-rate allowance the call did not use.
    public func settle(_ hold: HoldID, usage: [UsageItem]?, requestID: RequestID) async throws(TollgateError) -> Decision {
        let prices = try await currentPrices()
        return try await step("settle", hold.account, requestID,
                              [String(hold.sequence), requestID.rawValue, usage == nil ? "0" : "1"]
                              + usageArguments(usage ?? [], prices))
    }

    static func holdTTL(_ duration: Duration) throws(TollgateError) -> Int64 {
        let milliseconds = duration.wholeMilliseconds
        guard milliseconds >= 1, milliseconds <= 7 * 24 * 3_600_000 else {
            throw TollgateError(.invalidArgument, "a hold's TTL must be between 1 ms and 7 days")
        }
        return milliseconds
    }

    /// Usage as Lua reads it (`usage_arg` in lua/30_pricing.lua): the count, then per item
    /// meter, model, quantity, price in micro-credits (-1: none) and per.
    func usageArguments(_ usage: [UsageItem], _ prices: [PriceKey: Price]) throws(TollgateError) -> [String] {
        guard usage.count <= 64 else { throw TollgateError(.invalidArgument, "at most 64 usage items") }
        var arguments = [String(usage.count)]
        arguments.reserveCapacity(1 + usage.count * 5)
        for item in usage {
            arguments.append(item.key.meter)
            arguments.append(item.key.model ?? "")
            arguments.append(String(item.quantity))
            if let price = prices.price(for: item.key) {
                guard price.numerator(for: item.quantity) != nil else {
                    throw TollgateError(.invalidArgument, "\(item.quantity) \(item.key) at \(price.price) per \(price.per) is beyond 2^53 micro-credits")
                }
                arguments.append(String(price.price.micros))
                arguments.append(String(price.per))
            } else {
                arguments.append("-1")
                arguments.append("1")
            }
        }
        return arguments
    }
}
