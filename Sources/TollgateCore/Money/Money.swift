/// An amount of credit in micro-credits (1 credit = 1 USDT = 1,000,000 micro-credits).
///
/// Amounts that reach Lua must stay below 2^53 micro-credits in magnitude (Lua numbers are
/// doubles), so `Money` never holds more than `Money.maximum` either way.
public struct Money: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// The amount in micro-credits.
    public let micros: Int64

    /// 2^53 - 1 micro-credits, about 9 billion credits: the largest magnitude the engine accepts.
    public static let maximum = Money(uncheckedMicros: 9_007_199_254_740_991)
    /// No credit.
    public static let zero = Money(uncheckedMicros: 0)
    /// Micro-credits per credit.
    public static let microsPerCredit: Int64 = 1_000_000

    private init(uncheckedMicros: Int64) { micros = uncheckedMicros }

    /// An amount in micro-credits; `nil` beyond ±`Money.maximum`.
    public init?(micros: Int64) {
        guard micros.magnitude <= Money.maximum.micros.magnitude else { return nil }
        self.micros = micros
    }

    /// Parses a decimal string of credits such as `"12.5"` or `"0.000001"`.
    ///
    /// Accepted: digits with at most 6 fractional digits and, when `allowNegative`, a leading
    /// `-`. Refused with `invalid_amount`: exponents, `+`, spaces, NaN, more than 6 decimals,
    /// magnitudes beyond `Money.maximum`, and negative amounts unless allowed.
    public init(parsing text: String, allowNegative: Bool = false) throws(TollgateError) {
        func invalid(_ why: String) -> TollgateError {
            TollgateError(.invalidAmount, "'\(text.prefix(40))' is not a valid amount: \(why)")
        }
        var bytes = Array(text.utf8)[...]
        var negative = false
        if bytes.first == UInt8(ascii: "-") {
            negative = true
            bytes = bytes.dropFirst()
        }
        let parts = bytes.split(separator: UInt8(ascii: "."), maxSplits: 1, omittingEmptySubsequences: false)
        let whole = parts[0]
        let fraction = parts.count > 1 ? parts[1] : []
        let isDigit: (UInt8) -> Bool = { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        guard !whole.isEmpty, whole.allSatisfy(isDigit) else {
            throw invalid("use digits with an optional '.' and up to 6 decimals, like 12.5")
        }
        if parts.count > 1 {
            guard !fraction.isEmpty, fraction.allSatisfy(isDigit) else {
                throw invalid("use digits with an optional '.' and up to 6 decimals, like 12.5")
            }
            guard fraction.count <= 6 else { throw invalid("more than 6 decimal places (1 micro-credit is 0.000001)") }
        }
        let digitsOfWhole = whole.drop { $0 == UInt8(ascii: "0") }
        guard digitsOfWhole.count <= 10 else { throw invalid("more than 9,007,199,254 credits") }
        var micros: Int64 = 0
        for digit in digitsOfWhole { micros = micros * 10 + Int64(digit - UInt8(ascii: "0")) }
        micros *= Money.microsPerCredit
        var scale: Int64 = 100_000
        for digit in fraction {
            micros += Int64(digit - UInt8(ascii: "0")) * scale
            scale /= 10
        }
        guard micros <= Money.maximum.micros else { throw invalid("more than 9,007,199,254.740991 credits") }
        if negative {
            guard allowNegative else { throw invalid("must not be negative") }
            micros = -micros
        }
        self.micros = micros
    }

    /// The amount as a decimal string of credits with no trailing zeros: `"12.5"`, `"-3"`.
    public var description: String {
        let magnitude = micros.magnitude
        let whole = magnitude / UInt64(Money.microsPerCredit)
        var fraction = magnitude % UInt64(Money.microsPerCredit)
        var text = micros < 0 ? "-\(whole)" : "\(whole)"
        if fraction != 0 {
            var digits = 6
            while fraction % 10 == 0 {
                fraction /= 10
                digits -= 1
            }
            let padded = String(fraction)
            text += "." + String(repeating: "0", count: digits - padded.count) + padded
        }
        return text
    }

    public static func < (lhs: Money, rhs: Money) -> Bool { lhs.micros < rhs.micros }

    /// Whether the amount is above zero.
    public var isPositive: Bool { micros > 0 }

    /// Encodes as the decimal string of credits the JSON API uses.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    /// Decodes from a decimal string of credits (negative amounts allowed; callers check sign).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        do {
            self = try Money(parsing: text, allowNegative: true)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.message)
        }
    }
}
