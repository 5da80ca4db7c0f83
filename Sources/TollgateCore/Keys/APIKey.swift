import Crypto

/// An API key's public id, `key_` and 16 lowercase letters or digits.
public struct KeyID: ByteIdentifier, Sendable, CustomStringConvertible {
    public let rawValue: String

    public init(_ rawValue: String) throws(TollgateError) {
        let body = rawValue.dropFirst(4)
        guard rawValue.hasPrefix("key_"), body.count == 16,
              body.utf8.allSatisfy({ APIKeySecret.alphabet.contains($0) }) else {
            throw TollgateError(.invalidArgument, "'\(rawValue.prefix(40))' is not a key id (they look like key_0123456789abcdef)")
        }
        self.rawValue = rawValue
    }

    static func random() -> KeyID {
        // Built from the alphabet, so always valid.
        KeyID(unchecked: "key_" + APIKeySecret.randomCharacters(16))
    }

    private init(unchecked: String) { rawValue = unchecked }

    public var description: String { rawValue }
}

/// An API key's secret: shown once at creation, stored only as its SHA-256.
public enum APIKeySecret {
    static let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789".utf8)

    /// `tgk_` and 40 random letters and digits (about 206 bits).
    static func generate() -> String {
        "tgk_" + randomCharacters(40)
    }

    static func randomCharacters(_ count: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return randomCharacters(count, using: &generator)
    }

    static func randomCharacters(_ count: Int, using generator: inout some RandomNumberGenerator) -> String {
        let bytes = (0..<count).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The lowercase hex SHA-256 of a secret: what Redis stores and looks keys up by.
    public static func hash(_ secret: String) -> String {
        hex(SHA256.hash(data: Array(secret.utf8)))
    }
}

/// A newly created API key. The secret is never stored; this is the only time it is known.
public struct CreatedKey: Sendable, Hashable, Encodable {
    public var keyID: KeyID
    public var account: AccountID
    public var secret: String

    private enum CodingKeys: String, CodingKey { case keyID = "key_id", account, secret }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(keyID.rawValue, forKey: .keyID)
        try container.encode(account.rawValue, forKey: .account)
        try container.encode(secret, forKey: .secret)
    }
}

/// What is known about an API key: never its secret.
public struct KeySummary: Sendable, Hashable, Encodable {
    public var keyID: KeyID
    public var account: AccountID
    /// `active` or `revoked`.
    public var status: String
    /// When it was made, ms since the epoch.
    public var created: Int64
    /// Its own limits.
    public var limits: [LimitName: Int64]

    private enum CodingKeys: String, CodingKey { case keyID = "key_id", account, status, created, limits }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(keyID.rawValue, forKey: .keyID)
        try container.encode(account.rawValue, forKey: .account)
        try container.encode(status, forKey: .status)
        try container.encode(Timestamp.iso8601(milliseconds: created), forKey: .created)
        try container.encode(LimitsJSON(limits), forKey: .limits)
    }
}

/// Limits as JSON: counts as numbers, caps as decimal strings of credits.
struct LimitsJSON: Encodable {
    let limits: [LimitName: Int64]
    init(_ limits: [LimitName: Int64]) { self.limits = limits }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: AnyKey.self)
        for (name, value) in limits.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            let key = AnyKey(name.displayName)
            if name.isAmount {
                try container.encode(Money(micros: value) ?? .zero, forKey: key)
            } else {
                try container.encode(value, forKey: key)
            }
        }
    }
}

struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
