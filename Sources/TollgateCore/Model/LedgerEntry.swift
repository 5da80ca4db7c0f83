/// The kinds of ledger entry (docs/ARCHITECTURE.md: Data in Redis; I2).
public enum LedgerKind: String, Sendable, Hashable, Codable, CaseIterable {
    case topup, deposit, coupon, grant, adjustment, debit, hold, capture, release, expire, refund
    /// Gives back a decision that was answered 503 but had applied (`lua/65_void.lua`).
    case void
}

/// One change on an account, as written by the Lua step that made it.
public struct LedgerEntry: Sendable, Hashable {
    /// The entry's id, unique within the account and ordered by time (`<ms>-<n>`).
    public var id: String
    public var kind: LedgerKind
    /// The change of balance (negative for debits and captures, 0 for holds and releases).
    public var amount: Money
    /// The balance after this entry.
    public var balance: Money
    /// The held amount after this entry.
    public var held: Money
    /// The change of the held amount.
    public var heldDelta: Money
    /// When it happened, ms since the epoch (the engine's clock).
    public var time: Int64
    /// The caller's request id.
    public var requestID: String
    /// The hold it concerns, if any.
    public var holdID: HoldID?
    /// For usage charges: the meter, model, quantity and API key charged for.
    public var meter: String?
    public var model: String?
    public var quantity: Int64?
    public var keyID: String?
    /// What a credit came from: a deposit id, `coupon:<ref>` or `grant:<seq>`.
    public var reference: String? = nil
    /// For promotional credit (grant, coupon): when it expires, ms since the epoch.
    public var expiresAt: Int64? = nil
    /// Something to look at: `amount_mismatch` when a deposit received a different amount
    /// than requested.
    public var flag: String? = nil
    /// In the payment history, a deposit's status: `pending`, `completed` or `failed`.
    public var status: String? = nil
}

/// A page of ledger entries, newest first.
public struct LedgerPage: Sendable, Hashable {
    public var entries: [LedgerEntry]
    /// Pass back to get the next (older) page; `nil` on the last page.
    public var nextCursor: String?
}
