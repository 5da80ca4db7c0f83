/// A deposit's id, `dep_<random>.<account in base64url>`: the provider carries it back in
/// its webhook, and the account is read off it with no lookup.
public struct DepositID: Sendable, Hashable, CustomStringConvertible {
    public let account: AccountID
    let token: String

    /// A new id on `account`.
    public init(account: AccountID) {
        self.account = account
        self.token = APIKeySecret.randomCharacters(16)
    }

    /// Parses the text form; `invalid_argument` when it is not a deposit id.
    public init(parsing text: String) throws(TollgateError) {
        let invalid = TollgateError(.invalidArgument, "'\(text.prefix(80))' is not a deposit id")
        guard text.hasPrefix("dep_"), let dot = text.firstIndex(of: ".") else { throw invalid }
        let token = text[text.index(text.startIndex, offsetBy: 4)..<dot]
        guard !token.isEmpty, token.count <= 32, token.utf8.allSatisfy({ APIKeySecret.alphabet.contains($0) }),
              let bytes = Base64URL.decode(text[text.index(after: dot)...]) else { throw invalid }
        self.account = try AccountID(String(decoding: bytes, as: UTF8.self))
        guard Array(account.rawValue.utf8) == bytes else { throw invalid }
        self.token = String(token)
    }

    public var description: String {
        "dep_\(token).\(Base64URL.encode(Array(account.rawValue.utf8)))"
    }
}

/// Where a deposit stands.
public enum DepositStatus: String, Sendable, Hashable, Codable {
    case pending, completed, failed
}

/// A crypto deposit through a payment provider.
public struct Deposit: Sendable, Hashable {
    public var id: DepositID
    public var status: DepositStatus
    /// The credits requested.
    public var credits: Money
    public var token: String
    /// The token amount requested, as the account holder wrote it.
    public var tokenAmount: String
    public var provider: String
    public var created: Int64
    public var updated: Int64?
    public var providerTransactionID: String?
    /// The credits applied when completed.
    public var credited: Money?
    /// The token amount the provider reported as received.
    public var received: String?
    /// Set when the received amount differed from the request.
    public var flagged: Bool
    /// The ledger entry of the credit.
    public var entryID: String?
}

/// The answer to a provider's confirmation.
public struct DepositSettlement: Sendable, Hashable {
    public var decision: Decision
    /// Whether the credited amount differs from the one requested.
    public var flagged: Bool
}
