/// An exact non-negative decimal number: `significand / 10^scale`.
///
/// Used for token amounts (what a provider reports, what a deposit asks for) and for token
/// rates. No `Double` anywhere: parsing, conversion and formatting are integer arithmetic.
public struct DecimalAmount: Sendable, Hashable, CustomStringConvertible {
    /// The digits as an integer, with no trailing zeros when `scale > 0`.
    public let significand: UInt128
    /// How many of the digits are fractional, 0 to `maximumScale`.
    public let scale: Int

    /// The most fractional digits accepted (token amounts have at most 18).
    public static let maximumScale = 20

    /// Zero.
    public static let zero = DecimalAmount(normalizing: 0, scale: 0)

    private init(normalizing significand: UInt128, scale: Int) {
        var significand = significand
        var scale = scale
        while scale > 0, significand % 10 == 0 {
            significand /= 10
            scale -= 1
        }
        if significand == 0 { scale = 0 }
        self.significand = significand
        self.scale = scale
    }

    /// Parses a plain decimal such as `"50"`, `"12.3456789"`, `"0.99"`; with `allowExponent`
    /// also JSON's exponent form (`"1e-7"`, `"2.5E3"`), which JavaScript senders produce for
    /// very small or large numbers.
    ///
    /// Refused with `invalid_amount`: empty text, signs (a leading `-` gets its own message),
    /// spaces, NaN or infinities, `.5` or `5.`, more than `maximumScale` significant fractional
    /// digits, more than 38 significant digits.
    public init(parsing text: String, allowExponent: Bool = false) throws(PaymentsError) {
        func invalid(_ why: String) -> PaymentsError {
            PaymentsError(.invalidAmount, "'\(text.prefix(40))' is not a valid amount: \(why)")
        }
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty else { throw invalid("it is empty") }
        if bytes[0] == UInt8(ascii: "-") { throw invalid("it must not be negative") }
        let isDigit: (UInt8) -> Bool = { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        var index = 0
        var digits: [UInt8] = []
        while index < bytes.count, isDigit(bytes[index]) {
            digits.append(bytes[index] - UInt8(ascii: "0"))
            index += 1
        }
        guard !digits.isEmpty else { throw invalid("use digits with an optional '.' and decimals, like 12.5") }
        var fractionDigits = 0
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            while index < bytes.count, isDigit(bytes[index]) {
                digits.append(bytes[index] - UInt8(ascii: "0"))
                fractionDigits += 1
                index += 1
            }
            guard fractionDigits > 0 else { throw invalid("a '.' must be followed by digits") }
        }
        var exponent = 0
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            guard allowExponent else { throw invalid("exponents are not accepted") }
            index += 1
            var negativeExponent = false
            if index < bytes.count, bytes[index] == UInt8(ascii: "-") || bytes[index] == UInt8(ascii: "+") {
                negativeExponent = bytes[index] == UInt8(ascii: "-")
                index += 1
            }
            var exponentDigits = 0
            while index < bytes.count, isDigit(bytes[index]) {
                exponent = exponent * 10 + Int(bytes[index] - UInt8(ascii: "0"))
                exponentDigits += 1
                index += 1
                guard exponent <= 1000 else { throw invalid("the exponent is out of range") }
            }
            guard exponentDigits > 0 else { throw invalid("an exponent needs digits") }
            if negativeExponent { exponent = -exponent }
        }
        guard index == bytes.count else { throw invalid("use digits with an optional '.' and decimals, like 12.5") }

        // value = digits / 10^(fractionDigits - exponent)
        var scale = fractionDigits - exponent
        while scale > 0, digits.count > 1, digits.last == 0 {
            digits.removeLast()
            scale -= 1
        }
        if digits.allSatisfy({ $0 == 0 }) {
            self = .zero
            return
        }
        if scale < 0 {
            guard -scale <= 38 else { throw invalid("it is too large") }
            digits.append(contentsOf: repeatElement(0, count: -scale))
            scale = 0
        }
        let significant = digits.drop { $0 == 0 }
        guard scale <= Self.maximumScale else {
            throw invalid("more than \(Self.maximumScale) decimal places")
        }
        guard significant.count <= 38 else { throw invalid("more than 38 significant digits") }
        var value: UInt128 = 0
        for digit in significant { value = value * 10 + UInt128(digit) }
        self.init(normalizing: value, scale: scale)
    }

    /// Whether the amount is zero.
    public var isZero: Bool { significand == 0 }

    /// The canonical decimal text: no exponent, no trailing zeros, `"0"` for zero.
    public var description: String {
        let digits = String(significand)
        guard scale > 0 else { return digits }
        if digits.count > scale {
            let split = digits.index(digits.endIndex, offsetBy: -scale)
            return digits[..<split] + "." + digits[split...]
        }
        return "0." + String(repeating: "0", count: scale - digits.count) + digits
    }

    /// `10^exponent` for `0...38`.
    static func powerOfTen(_ exponent: Int) -> UInt128 {
        precondition((0...38).contains(exponent))
        var result: UInt128 = 1
        for _ in 0..<exponent { result *= 10 }
        return result
    }
}
