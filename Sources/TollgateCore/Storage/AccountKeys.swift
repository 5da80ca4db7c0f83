/// The Redis keys of one account. All share the hash tag `{a:ID}` so every step on an account
/// touches one cluster slot (I7). The id is percent-encoded, keeping `{`, `}` and any other
/// byte out of the tag, and the encoding is reversible so `SCAN` can recover ids.
struct AccountKeys: Sendable {
    let account: String
    let ledger: String
    let holds: String
    let holdExpiry: String
    private let prefix: String

    /// The `SCAN` pattern that matches every account's main key.
    static let accountPattern = "tg:{a:*}:acct"

    init(_ id: AccountID) {
        prefix = "tg:{a:" + Self.encode(id.rawValue) + "}:"
        account = prefix + "acct"
        ledger = prefix + "ledger"
        holds = prefix + "holds"
        holdExpiry = prefix + "holdexp"
    }

    /// The key of one deposit's record, and the index of the account's deposits.
    func deposit(_ id: String) -> String { prefix + "dep:" + id }
    var deposits: String { prefix + "deposits" }
    /// The index of the account's tokens: SHA-256 of each → when it was made.
    var tokens: String { prefix + "tokens" }
    /// The credit entries of the ledger (the payment history).
    var payments: String { prefix + "payments" }
    /// The usage aggregates of one period: `h`, `d` or `m` and the period's id.
    func usage(_ granularity: Character, _ period: Int64) -> String { prefix + "u:\(granularity):\(period)" }

    /// The key that remembers the result of one request id (I3).
    func idempotency(_ requestID: RequestID) -> String {
        prefix + "idem:" + requestID.rawValue
    }

    /// The keys of an account step, in the order `lua/10_account.lua` expects.
    func forStep(_ requestID: RequestID? = nil) -> [String] {
        var keys = [account, ledger, holds, holdExpiry]
        if let requestID { keys.append(idempotency(requestID)) }
        return keys
    }

    /// The account id in an account's main key, or `nil` if the key is not one.
    static func accountID(fromAccountKey key: String) -> AccountID? {
        guard key.hasPrefix("tg:{a:"), key.hasSuffix("}:acct") else { return nil }
        let encoded = key.dropFirst(6).dropLast(6)
        guard let raw = decode(encoded) else { return nil }
        return try? AccountID(raw)
    }

    private static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"),
             UInt8(ascii: "."), UInt8(ascii: "~"), UInt8(ascii: "@"):
            return true
        default:
            return false
        }
    }

    static func encode(_ raw: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(raw.utf8.count)
        for byte in raw.utf8 {
            if isUnreserved(byte) {
                out.append(byte)
            } else {
                out.append(UInt8(ascii: "%"))
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0x0F)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func decode(_ encoded: Substring) -> String? {
        var out: [UInt8] = []
        var iterator = encoded.utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next(), let low = iterator.next(),
                      let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) else { return nil }
                out.append(value)
            } else {
                out.append(byte)
            }
        }
        return String(validating: out, as: UTF8.self)
    }
}
