/// A hold's id, `h<seq>.<account in base64url>`: self-contained, so a capture or release
/// needs no lookup to find the account, and safe in URL paths.
public struct HoldID: Sendable, Hashable, CustomStringConvertible {
    /// The account the hold reserves credit on.
    public let account: AccountID
    /// The hold's number within the account.
    public let sequence: Int64

    public init(account: AccountID, sequence: Int64) {
        self.account = account
        self.sequence = sequence
    }

    /// Parses the text form; throws `invalid_argument` when it is not a hold id.
    public init(parsing text: String) throws(TollgateError) {
        let invalid = TollgateError(.invalidArgument, "'\(text.prefix(80))' is not a hold id (they look like h12.ZGVtbw)")
        guard text.hasPrefix("h"), let dot = text.firstIndex(of: ".") else { throw invalid }
        guard let sequence = Int64(text[text.index(after: text.startIndex)..<dot]), sequence > 0,
              let bytes = Base64URL.decode(text[text.index(after: dot)...]) else { throw invalid }
        self.account = try AccountID(String(decoding: bytes, as: UTF8.self))
        guard Array(account.rawValue.utf8) == bytes else { throw invalid }
        self.sequence = sequence
    }

    public var description: String {
        "h\(sequence).\(Base64URL.encode(Array(account.rawValue.utf8)))"
    }
}

/// Unpadded base64url (RFC 4648 §5).
enum Base64URL {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    private static let values: [UInt8: UInt8] = Dictionary(uniqueKeysWithValues: alphabet.enumerated().map { ($1, UInt8($0)) })

    static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        var index = 0
        while index < bytes.count {
            let b0 = bytes[index]
            let b1 = index + 1 < bytes.count ? bytes[index + 1] : 0
            let b2 = index + 2 < bytes.count ? bytes[index + 2] : 0
            out.append(alphabet[Int(b0 >> 2)])
            out.append(alphabet[Int((b0 & 0x03) << 4 | b1 >> 4)])
            if index + 1 < bytes.count { out.append(alphabet[Int((b1 & 0x0F) << 2 | b2 >> 6)]) }
            if index + 2 < bytes.count { out.append(alphabet[Int(b2 & 0x3F)]) }
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func decode(_ text: Substring) -> [UInt8]? {
        var out: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        for character in text.utf8 {
            guard let value = values[character] else { return nil }
            buffer = buffer << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8((buffer >> UInt32(bits)) & 0xFF))
            }
        }
        // Leftover bits must be zero padding of fewer than 6 bits, or the text is not canonical.
        guard bits < 6, buffer & ((1 << UInt32(bits)) - 1) == 0 else { return nil }
        return out
    }
}
