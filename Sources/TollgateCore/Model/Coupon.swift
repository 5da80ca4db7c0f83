/// Coupon codes: `TG-XXXX-XXXX-XXXX` from an alphabet without look-alikes (about 59 bits).
/// Redis keeps only their keyed hash (`CouponKey`); a code is matched after normalizing (case,
/// dashes, spaces).
public enum CouponCode {
    static let alphabet = Array("ABCDEFGHJKMNPQRSTUVWXYZ23456789".utf8)

    /// A new code drawn with `generator`.
    static func generate(using generator: inout some RandomNumberGenerator) -> String {
        let groups = (0..<3).map { _ in
            String(decoding: (0..<4).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] }, as: UTF8.self)
        }
        return "TG-" + groups.joined(separator: "-")
    }

    /// The code as matched: ASCII letters in upper case, without dashes and spaces. Only ASCII
    /// is folded (codes are ASCII): any other byte stays as it is, so no Unicode case mapping
    /// or equivalence makes two different inputs one code.
    static func normalize(_ code: String) -> String {
        let bytes = code.utf8.compactMap { byte -> UInt8? in
            switch byte {
            case UInt8(ascii: "-"), UInt8(ascii: " "): return nil
            case UInt8(ascii: "a")...UInt8(ascii: "z"): return byte - 32
            default: return byte
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The keys of one coupon: its record and the set of accounts that redeemed it, by its
    /// keyed hash (`CouponKey`). The two share a hash tag so they sit in one cluster slot.
    static func keys(hash: String) -> (record: String, redeemers: String) {
        ("tg:{cp:\(hash)}:coupon", "tg:{cp:\(hash)}:by")
    }

    /// Where earlier versions kept a coupon: under the plain SHA-256 of its code. Found only
    /// to be moved to `keys(hash:)` (`Engine.prepareCoupons()`).
    enum Unkeyed {
        static let recordPattern = "tg:{c:*}:coupon"

        /// The plain hash in a record key matched by `recordPattern`, if it is one.
        static func hash(ofRecord key: String) -> String? {
            guard key.hasPrefix("tg:{c:"), key.hasSuffix("}:coupon") else { return nil }
            let hash = key.dropFirst("tg:{c:".count).dropLast("}:coupon".count)
            guard !hash.isEmpty, hash.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else { return nil }
            return String(hash)
        }

        static func keys(hash: String) -> (record: String, redeemers: String) {
            ("tg:{c:\(hash)}:coupon", "tg:{c:\(hash)}:by")
        }
    }

    /// The hash that records the coupon secret's fingerprint (field `fingerprint`,
    /// `CouponKey.fingerprint`) and when coupons kept unkeyed were last found all moved (`moved`).
    static let secretRecordKey = "tg:coupon:key"
}

/// A batch of coupons an operator created. The codes are shown only now.
public struct CouponBatch: Sendable, Hashable {
    public var codes: [String]
    public var amount: Money
    public var maxRedemptions: Int
    /// Codes are redeemable until then (ms since the epoch).
    public var expires: Int64
    /// The one account that may redeem them, if bound.
    public var account: AccountID?
    /// When the credit they give expires (ms since the epoch); nil: never.
    public var creditExpires: Int64?
}

/// The answer to a redemption.
public struct CouponRedemption: Sendable, Hashable {
    /// Applied or refused (`invalid`, `expired`, `exhausted`, `already_redeemed`,
    /// `too_many_attempts`, `account_closed`), with the account afterwards.
    public var decision: Decision
    /// When the promotional credit expires (ms since the epoch); nil: never or refused.
    public var creditExpires: Int64?
}
