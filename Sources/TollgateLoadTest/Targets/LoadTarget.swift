import TollgateCore

/// The answer to one call, as the load test needs it.
public struct CallOutcome: Sendable, Hashable {
    /// Whether the call was applied.
    public var allowed: Bool
    /// Why not (`rate_limited`, `insufficient_credit`, ...), when refused.
    public var reason: String?
    /// The amount applied: the cost of a debit or report, what a settle charged on the hold in
    /// all, what a credit or coupon added.
    public var amount: Money
    /// The hold made by an `authorize` in hold mode.
    public var holdID: String?
    /// The ledger entry written (a coupon redemption's, which has no caller's request id).
    public var entryID: String?

    /// An outcome.
    public init(allowed: Bool, reason: String? = nil, amount: Money = .zero, holdID: String? = nil, entryID: String? = nil) {
        self.allowed = allowed
        self.reason = reason
        self.amount = amount
        self.holdID = holdID
        self.entryID = entryID
    }
}

/// One ledger entry, as the books check reads it.
public struct LedgerRecord: Sendable, Hashable {
    /// The entry's id.
    public var id: String
    /// The request id that wrote it.
    public var requestID: String
    /// `debit`, `hold`, `capture`, `topup`, ...
    public var kind: String
    /// The change of balance.
    public var amount: Money

    /// A record.
    public init(id: String, requestID: String, kind: String, amount: Money) {
        self.id = id
        self.requestID = requestID
        self.kind = kind
        self.amount = amount
    }
}

/// What the load test drives: a Tollgate server over HTTP, or the engine in-process.
public protocol LoadTarget: Sendable {
    /// Where, for the report (`http://127.0.0.1:8080`, `unix:///tmp/redis.sock`).
    var address: String { get }
    /// Runs `body` with a session of its own (over HTTP, its own keep-alive connection), closed
    /// afterwards.
    func withSession<Result: Sendable>(
        _ body: (any LoadSession) async throws(LoadTestError) -> Result
    ) async throws(LoadTestError) -> Result
    /// Releases what the target holds (connections, event loops).
    func shutdown() async
}

/// One worker's line to the target. Used by one task at a time; not shared.
public protocol LoadSession: AnyObject {
    // Gateway calls.

    /// `authorize` by API key secret: a debit, or a hold for `holdTTL`.
    func authorize(key: String, usage: [UsageItem], requestID: String, holdTTL: Duration?) async throws(LoadTestError) -> CallOutcome
    /// A token batch against a hold.
    func report(hold: String, usage: [UsageItem], requestID: String) async throws(LoadTestError) -> CallOutcome
    /// Settles a hold on what was reported (`usage` nil) or on a final usage.
    func settle(hold: String, usage: [UsageItem]?, requestID: String) async throws(LoadTestError) -> CallOutcome

    // Operator calls (the admin token over HTTP).

    /// Sets the price of a meter: `price` credits per `per` units.
    func setPrice(meter: String, price: Money, per: Int64) async throws(LoadTestError)
    /// Creates an account with no credit.
    func createAccount(_ id: AccountID) async throws(LoadTestError)
    /// Creates an API key; returns its id and secret.
    func createKey(for id: AccountID) async throws(LoadTestError) -> (keyID: String, secret: String)
    /// Sets a key's request rate per second.
    func setKeyRateLimit(keyID: String, perSecond: Int64) async throws(LoadTestError)
    /// Tops an account up.
    func credit(_ id: AccountID, amount: Money, requestID: String) async throws(LoadTestError) -> CallOutcome
    /// Issues single-use coupon codes worth `amount`, valid for an hour.
    func createCoupons(amount: Money, count: Int) async throws(LoadTestError) -> [String]
    /// Redeems a coupon on an account; a refused code is a denial with the reason.
    func redeem(_ id: AccountID, code: String) async throws(LoadTestError) -> CallOutcome
    /// One page of an account's ledger (newest first) and the cursor of the next.
    func ledger(_ id: AccountID, cursor: String?) async throws(LoadTestError) -> (records: [LedgerRecord], next: String?)
    /// An account's balance and what open holds reserve on it.
    func account(_ id: AccountID) async throws(LoadTestError) -> (balance: Money, held: Money)
    /// What `audit` finds wrong with these accounts (empty: clean).
    func auditProblems(_ ids: [AccountID]) async throws(LoadTestError) -> [String]
}
