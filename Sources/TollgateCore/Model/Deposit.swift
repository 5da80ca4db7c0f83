/// A deposit's id, `dep_` and 24 random letters and digits: short enough for every provider
/// (AlchemyPay takes 48 bytes) whatever the account id. The engine finds the account by the
/// id's index key.
public struct DepositID: Sendable, Hashable, CustomStringConvertible {
    public let rawValue: String

    /// A new random id.
    public static func random() -> DepositID {
        DepositID(unchecked: "dep_" + APIKeySecret.randomCharacters(24))
    }

    /// The id of the deposit an account starts with `requestID`: the same for every retry, so a
    /// retry finds the deposit it made instead of starting another. Deposit ids need not be
    /// secret (a provider's word on one is signed); this one is as unique as a random one.
    public static func derived(account: AccountID, requestID: RequestID) -> DepositID {
        var generator = SeededGenerator(seed: Array("deposit\u{0}".utf8) + Array(account.rawValue.utf8) + [0] + Array(requestID.rawValue.utf8))
        return DepositID(unchecked: "dep_" + APIKeySecret.randomCharacters(24, using: &generator))
    }

    private init(unchecked rawValue: String) { self.rawValue = rawValue }

    /// Parses the text form; `invalid_argument` when it is not a deposit id.
    public init(parsing text: String) throws(TollgateError) {
        guard text.hasPrefix("dep_"), text.utf8.count == 28,
              text.utf8.dropFirst(4).allSatisfy({ APIKeySecret.alphabet.contains($0) }) else {
            throw TollgateError(.invalidArgument, "'\(text.prefix(80))' is not a deposit id")
        }
        rawValue = text
    }

    public var description: String { rawValue }

    /// The global key naming the deposit's account.
    var indexKey: String { "tg:deposit:" + rawValue }
}

/// Where a deposit stands.
public enum DepositStatus: String, Sendable, Hashable, Codable {
    case pending, completed, failed
}

/// A crypto deposit through a payment provider.
public struct Deposit: Sendable, Hashable {
    public var id: DepositID
    public var account: AccountID
    public var status: DepositStatus
    /// The credits requested.
    public var credits: Money
    public var token: String
    /// The token amount requested, as the account holder wrote it.
    public var tokenAmount: String
    public var provider: String
    /// Where the crypto must be sent: the receive address and its network.
    public var network: String
    public var address: String
    public var created: Int64
    public var updated: Int64?
    public var providerTransactionID: String?
    /// The credits applied when completed (all of them, if more than one payment came).
    public var credited: Money?
    /// The token amount the provider reported as received.
    public var received: String?
    /// Set when something needs an operator: a received amount that differed, a second
    /// payment, or a payment to another address (`rejection`).
    public var flagged: Bool
    /// Why a provider's confirmation was refused (`wrong_destination`).
    public var rejection: String?
    /// The ledger entry of the (last) credit.
    public var entryID: String?

    /// Whether `address` is this deposit's receive address (hex addresses compare without case).
    public func isReceiveAddress(_ address: String) -> Bool {
        if self.address.hasPrefix("0x") || self.address.hasPrefix("0X") {
            return self.address.lowercased() == address.lowercased()
        }
        return self.address == address
    }
}

/// What a provider's confirmation did.
public enum DepositOutcome: String, Sendable, Hashable {
    /// Credited as requested.
    case credited
    /// Credited as received, which differed from the request (flagged).
    case amountMismatch = "amount_mismatch"
    /// A second payment against a completed deposit, credited and flagged.
    case duplicatePayment = "duplicate_payment"
    /// Already applied: this provider transaction was seen before; nothing changed.
    case duplicate
    /// Marked failed (or left as it was, if not pending).
    case failed
    /// Refused: the crypto went elsewhere; nothing credited, the deposit flagged.
    case rejected
}

/// The answer to a provider's confirmation.
public struct DepositSettlement: Sendable, Hashable {
    public var decision: Decision
    public var outcome: DepositOutcome
}
