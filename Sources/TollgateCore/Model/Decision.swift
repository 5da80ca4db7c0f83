/// Why the engine refused a call. A refused call changes nothing (I5).
public struct DenialReason: Sendable, Hashable, CustomStringConvertible {
    /// The reason as written in JSON and CLI output.
    public let rawValue: String
    init(_ rawValue: String) { self.rawValue = rawValue }

    /// Available credit (plus the credit limit) does not cover the amount.
    public static let insufficientCredit = DenialReason("insufficient_credit")
    /// The account is frozen.
    public static let accountFrozen = DenialReason("account_frozen")
    /// The account is closed.
    public static let accountClosed = DenialReason("account_closed")
    /// The hold is not open: it was released, expired or never existed.
    public static let holdNotFound = DenialReason("hold_not_found")

    public var description: String { rawValue }

    /// A sentence for people.
    public var explanation: String {
        switch self {
        case .insufficientCredit: return "insufficient credit: available credit does not cover the amount"
        case .accountFrozen: return "the account is frozen"
        case .accountClosed: return "the account is closed"
        case .holdNotFound: return "no open hold with this id (released, expired or never made)"
        default: return rawValue
        }
    }
}

/// The answer to a mutation: applied or refused, and the account's figures afterwards.
public struct Decision: Sendable, Hashable {
    /// Whether the mutation was applied.
    public var allowed: Bool
    /// Why not, when refused.
    public var reason: DenialReason?
    /// The account after the call (unchanged when refused).
    public var account: AccountState
    /// The ledger entry written, when one was.
    public var entryID: String?
    /// The hold created or acted on.
    public var holdID: HoldID?
    /// The amount applied: debited, credited, reserved, captured or released.
    public var amount: Money
    /// For a hold: when it expires (ms since the epoch, the engine's clock).
    public var holdExpiresAt: Int64?
    /// For a capture or release: all captured on the hold so far.
    public var capturedOnHold: Money?
    /// Whether this is the stored answer to an earlier call with the same request id (I3).
    public var replayed: Bool
}
