/// Why the engine refused a call. A refused call changes nothing but deny counters (I5).
public struct DenialReason: Sendable, Hashable, CustomStringConvertible {
    /// The reason as written in JSON and CLI output.
    public let rawValue: String
    init(_ rawValue: String) { self.rawValue = rawValue }

    /// Available credit (plus the credit limit) does not cover the cost.
    public static let insufficientCredit = DenialReason("insufficient_credit")
    /// A request-rate limit (rps, rpm, rph) is used up.
    public static let rateLimited = DenialReason("rate_limited")
    /// The token-rate limit (tpm) is used up.
    public static let tokenRateLimited = DenialReason("token_rate_limited")
    /// Too many holds are open.
    public static let concurrencyLimited = DenialReason("concurrency_limited")
    /// A spend cap (hourly, daily, monthly, lifetime) would be passed.
    public static let spendCapReached = DenialReason("spend_cap_reached")
    /// The account is frozen.
    public static let accountFrozen = DenialReason("account_frozen")
    /// The account is closed.
    public static let accountClosed = DenialReason("account_closed")
    /// The API key was revoked.
    public static let keyRevoked = DenialReason("key_revoked")
    /// No API key has this secret.
    public static let unknownKey = DenialReason("unknown_key")
    /// A usage item names a meter (or model) without a price.
    public static let unknownMeter = DenialReason("unknown_meter")
    /// The hold is not open: it was settled, released, expired or never existed.
    public static let holdNotFound = DenialReason("hold_not_found")
    /// A coupon code that does not exist (or is bound to another account).
    public static let invalidCoupon = DenialReason("invalid")
    /// A coupon past its expiry, or a grant whose expiry has passed.
    public static let expired = DenialReason("expired")
    /// A coupon redeemed as many times as it may be.
    public static let exhausted = DenialReason("exhausted")
    /// This account redeemed this coupon before.
    public static let alreadyRedeemed = DenialReason("already_redeemed")
    /// Too many failed coupon attempts from this account or address; wait `retry_after_ms`.
    public static let tooManyAttempts = DenialReason("too_many_attempts")
    /// The deposit was completed before, by another provider transaction.
    public static let depositAlreadyCompleted = DenialReason("deposit_already_completed")

    public var description: String { rawValue }

    /// A sentence for people.
    public var explanation: String {
        switch self {
        case .insufficientCredit: return "insufficient credit: available credit does not cover the cost"
        case .rateLimited: return "rate limited: too many requests"
        case .tokenRateLimited: return "token rate limited: too many tokens per minute"
        case .concurrencyLimited: return "concurrency limited: too many calls in flight"
        case .spendCapReached: return "spend cap reached"
        case .accountFrozen: return "the account is frozen"
        case .accountClosed: return "the account is closed"
        case .keyRevoked: return "the API key was revoked"
        case .unknownKey: return "unknown API key"
        case .unknownMeter: return "a usage item has no price (unknown meter or model)"
        case .holdNotFound: return "no open hold with this id (settled, released, expired or never made)"
        case .invalidCoupon: return "no such coupon code"
        case .expired: return "expired"
        case .exhausted: return "the coupon was redeemed as many times as it may be"
        case .alreadyRedeemed: return "this account redeemed this coupon already"
        case .tooManyAttempts: return "too many failed attempts; try again later"
        case .depositAlreadyCompleted: return "the deposit was completed already"
        default: return rawValue
        }
    }
}

/// The answer to a call: applied or refused, and the account's figures afterwards.
public struct Decision: Sendable, Hashable {
    /// Whether the call was applied.
    public var allowed: Bool
    /// Why not, when refused.
    public var reason: DenialReason?
    /// The account after the call (unchanged when refused); nil when no account was found
    /// (an unknown API key).
    public var account: AccountState?
    /// The ledger entry written, when one was (the last, when several).
    public var entryID: String?
    /// The hold created or acted on.
    public var holdID: HoldID?
    /// The amount applied: debited, credited, reserved, captured or released; for authorize
    /// and report, the cost; for a settle, the net charged on the hold in all.
    public var amount: Money
    /// For a hold: when it expires (ms since the epoch, the engine's clock).
    public var holdExpiresAt: Int64?
    /// For a capture, report, settle or release: all charged on the hold so far, net.
    public var capturedOnHold: Money?
    /// Whether this is the stored answer to an earlier call with the same request id (I3).
    public var replayed: Bool
    /// When refused, how long to wait before the same call could pass; nil where waiting
    /// does not help.
    public var retryAfterMilliseconds: Int64?
    /// Every limit that applied, with what it still allows.
    public var limits: [LimitStatus]
    /// The step's detail figure as Lua wrote it (see `reply()` in lua/10_account.lua); the
    /// billing calls read their own meaning from it.
    var detail: Int64 = 0

    init(
        allowed: Bool, reason: DenialReason?, account: AccountState?, entryID: String? = nil, holdID: HoldID? = nil,
        amount: Money = .zero, holdExpiresAt: Int64? = nil, capturedOnHold: Money? = nil, replayed: Bool = false,
        retryAfterMilliseconds: Int64? = nil, limits: [LimitStatus] = []
    ) {
        self.allowed = allowed
        self.reason = reason
        self.account = account
        self.entryID = entryID
        self.holdID = holdID
        self.amount = amount
        self.holdExpiresAt = holdExpiresAt
        self.capturedOnHold = capturedOnHold
        self.replayed = replayed
        self.retryAfterMilliseconds = retryAfterMilliseconds
        self.limits = limits
    }

    /// The account's balance after the call, if an account was found.
    public var balance: Money? { account?.balance }
    /// What the account can still spend after the call, if an account was found.
    public var available: Money? { account?.available }
}
