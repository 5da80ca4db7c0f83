// The JSON shapes the CLI prints and the HTTP API will serve; one definition for both.
// Amounts are decimal strings of credits.

extension AccountState: Encodable {
    private enum CodingKeys: String, CodingKey {
        case id, status, balance, paid, promotional, held, available, creditLimit = "credit_limit"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id.rawValue, forKey: .id)
        try container.encode(status, forKey: .status)
        try container.encode(balance, forKey: .balance)
        try container.encode(paid, forKey: .paid)
        try container.encode(promotional, forKey: .promotional)
        try container.encode(held, forKey: .held)
        try container.encode(available, forKey: .available)
        try container.encode(creditLimit, forKey: .creditLimit)
    }
}

extension Decision: Encodable {
    private enum CodingKeys: String, CodingKey {
        case allowed, reason, retryAfter = "retry_after_ms", cost, amount, account, balance, promotional, held, available, status
        case entryID = "entry_id", holdID = "hold_id", holdExpiresAt = "hold_expires_at"
        case capturedOnHold = "captured_on_hold", replayed, limits
    }

    /// The decision as the CLI's `--json` and the HTTP API write it: `allowed`, `reason`,
    /// `retry_after_ms`, `cost` (= `amount`), `balance`, `available`, `hold_id`, `limits`...
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(allowed, forKey: .allowed)
        try container.encode(reason?.rawValue, forKey: .reason)
        try container.encode(retryAfterMilliseconds, forKey: .retryAfter)
        try container.encode(amount, forKey: .cost)
        try container.encode(amount, forKey: .amount)
        try container.encode(account?.id.rawValue, forKey: .account)
        try container.encode(account?.balance, forKey: .balance)
        try container.encode(account?.promotional, forKey: .promotional)
        try container.encode(account?.held, forKey: .held)
        try container.encode(account?.available, forKey: .available)
        try container.encode(account?.status, forKey: .status)
        try container.encodeIfPresent(entryID, forKey: .entryID)
        try container.encode(holdID?.description, forKey: .holdID)
        try container.encodeIfPresent(holdExpiresAt, forKey: .holdExpiresAt)
        try container.encodeIfPresent(capturedOnHold, forKey: .capturedOnHold)
        try container.encode(replayed, forKey: .replayed)
        try container.encode(limits, forKey: .limits)
    }
}

extension LimitStatus: Encodable {
    private enum CodingKeys: String, CodingKey { case name, limit, remaining, resetMs = "reset_ms" }

    /// `{"name": "account.rpm", "limit": 5, "remaining": 4, "reset_ms": 12000}`; caps' limit and
    /// remaining are decimal strings of credits.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(qualifiedName, forKey: .name)
        if name.isAmount {
            try container.encode(Money(micros: limit) ?? .zero, forKey: .limit)
            try container.encode(Money(micros: remaining) ?? .zero, forKey: .remaining)
        } else {
            try container.encode(limit, forKey: .limit)
            try container.encode(remaining, forKey: .remaining)
        }
        try container.encode(resetMilliseconds, forKey: .resetMs)
    }
}

extension LedgerEntry: Encodable {
    private enum CodingKeys: String, CodingKey {
        case id, kind, amount, balance, held, heldDelta = "held_delta", requestID = "request_id"
        case holdID = "hold_id", time, meter, model, quantity, key, reference, expiresAt = "expires_at", flag, status
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(kind, forKey: .kind)
        try container.encode(amount, forKey: .amount)
        try container.encode(balance, forKey: .balance)
        try container.encode(held, forKey: .held)
        try container.encode(heldDelta, forKey: .heldDelta)
        try container.encode(requestID, forKey: .requestID)
        try container.encodeIfPresent(holdID?.description, forKey: .holdID)
        try container.encode(Timestamp.iso8601(milliseconds: time), forKey: .time)
        try container.encodeIfPresent(meter, forKey: .meter)
        try container.encodeIfPresent(model, forKey: .model)
        try container.encodeIfPresent(quantity, forKey: .quantity)
        try container.encodeIfPresent(keyID, forKey: .key)
        try container.encodeIfPresent(reference, forKey: .reference)
        try container.encodeIfPresent(expiresAt.map(Timestamp.iso8601(milliseconds:)), forKey: .expiresAt)
        try container.encodeIfPresent(flag, forKey: .flag)
        try container.encodeIfPresent(status, forKey: .status)
    }
}

extension AccountAudit: Encodable {
    private enum CodingKeys: String, CodingKey {
        case account, clean, balance, ledgerSum = "ledger_sum", held, openHolds = "open_holds", entries, problems
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(account.rawValue, forKey: .account)
        try container.encode(isClean, forKey: .clean)
        try container.encode(balance, forKey: .balance)
        try container.encode(ledgerSum, forKey: .ledgerSum)
        try container.encode(held, forKey: .held)
        try container.encode(openHolds, forKey: .openHolds)
        try container.encode(entries, forKey: .entries)
        try container.encode(problems, forKey: .problems)
    }
}

extension AuditReport: Encodable {
    private enum CodingKeys: String, CodingKey {
        case clean, accountsChecked = "accounts_checked", drifting
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(isClean, forKey: .clean)
        try container.encode(accounts.count, forKey: .accountsChecked)
        try container.encode(drifting, forKey: .drifting)
    }
}

extension Deposit: Encodable {
    private enum CodingKeys: String, CodingKey {
        case id, account, amount, token, tokenAmount = "token_amount", provider, network, address, status
        case createdAt = "created_at", updatedAt = "updated_at", providerTransactionID = "provider_transaction_id"
        case credited, received, flagged, rejection, entryID = "entry_id"
    }

    /// `{"id": "dep_…", "account", "amount" (credits requested), "token", "token_amount",
    /// "provider", "status", "created_at", "credited", "flagged", …}`
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id.description, forKey: .id)
        try container.encode(account.rawValue, forKey: .account)
        try container.encode(credits, forKey: .amount)
        try container.encode(token, forKey: .token)
        try container.encode(tokenAmount, forKey: .tokenAmount)
        try container.encode(provider, forKey: .provider)
        try container.encode(network, forKey: .network)
        try container.encode(address, forKey: .address)
        try container.encode(status, forKey: .status)
        try container.encode(Timestamp.iso8601(milliseconds: created), forKey: .createdAt)
        try container.encode(updated.map(Timestamp.iso8601(milliseconds:)), forKey: .updatedAt)
        try container.encode(providerTransactionID, forKey: .providerTransactionID)
        try container.encode(credited, forKey: .credited)
        try container.encode(received, forKey: .received)
        try container.encode(flagged, forKey: .flagged)
        try container.encode(rejection, forKey: .rejection)
        try container.encode(entryID, forKey: .entryID)
    }
}

extension UsageBreakdown: Encodable {
    private enum CodingKeys: String, CodingKey { case from, to, by, groups, total }
    private struct Group: Encodable {
        let meter: String?
        let model: String?
        let key: String?
        let period: String?
        let amount: Money
        let quantity: Int64
    }
    private struct Total: Encodable {
        let amount: Money
        let quantity: Int64
    }

    /// `{"from", "to", "by": ["meter", "day"], "groups": [{"meter", "period", "amount",
    /// "quantity"}], "total": {"amount", "quantity"}}`
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(Timestamp.iso8601(milliseconds: from), forKey: .from)
        try container.encode(Timestamp.iso8601(milliseconds: to), forKey: .to)
        try container.encode(grouping.description.split(separator: ",").map(String.init), forKey: .by)
        try container.encode(groups.map { Group(meter: $0.meter, model: $0.model, key: $0.key, period: $0.period, amount: $0.amount, quantity: $0.quantity) }, forKey: .groups)
        try container.encode(Total(amount: totalAmount, quantity: totalQuantity), forKey: .total)
    }
}

extension CouponBatch: Encodable {
    private enum CodingKeys: String, CodingKey {
        case codes, amount, count, maxRedemptions = "max_redemptions", expires, account, creditExpires = "credit_expires"
    }

    /// `{"codes": [...], "amount", "count", "max_redemptions", "expires", "account"?, "credit_expires"?}`
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(codes, forKey: .codes)
        try container.encode(amount, forKey: .amount)
        try container.encode(codes.count, forKey: .count)
        try container.encode(maxRedemptions, forKey: .maxRedemptions)
        try container.encode(Timestamp.iso8601(milliseconds: expires), forKey: .expires)
        try container.encodeIfPresent(account?.rawValue, forKey: .account)
        try container.encodeIfPresent(creditExpires.map(Timestamp.iso8601(milliseconds:)), forKey: .creditExpires)
    }
}

/// One line of a ledger archive: the entry as the API writes it, plus its account.
public struct ArchivedLedgerEntry: Encodable, Sendable {
    public let account: AccountID
    public let entry: LedgerEntry

    public init(account: AccountID, entry: LedgerEntry) {
        self.account = account
        self.entry = entry
    }

    public func encode(to encoder: any Encoder) throws {
        try entry.encode(to: encoder)
        var container = encoder.container(keyedBy: AnyKey.self)
        try container.encode(account.rawValue, forKey: AnyKey("account"))
    }
}
