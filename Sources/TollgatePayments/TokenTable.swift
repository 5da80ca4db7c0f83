import TollgateCore

/// The tokens Tollgate accepts and what one unit of each is worth in credits.
///
/// Configured as `TOLLGATE_TOKENS=USDT=1,USDC=1,DAI=0.99` (the default is `USDT=1,USDC=1`).
/// Conversion is exact: `credits = amount × rate`, rounded down to whole micro-credits, in
/// 256-bit integer arithmetic.
public struct TokenTable: Sendable, Hashable, CustomStringConvertible {
    /// One supported token.
    public struct Token: Sendable, Hashable {
        /// The symbol, uppercase letters and digits: `USDT`.
        public let symbol: String
        /// Credits per unit of the token; above zero.
        public let rate: DecimalAmount
    }

    /// The tokens in configured order.
    public let tokens: [Token]

    /// `USDT=1,USDC=1`.
    public static let `default`: TokenTable = {
        let one = try! DecimalAmount(parsing: "1")
        return TokenTable(unchecked: [Token(symbol: "USDT", rate: one), Token(symbol: "USDC", rate: one)])
    }()

    private init(unchecked tokens: [Token]) { self.tokens = tokens }

    /// Parses `SYMBOL=RATE` pairs separated by commas, such as `USDT=1,USDC=1,DAI=0.99`.
    ///
    /// Spaces around items are ignored; symbols are case-insensitive (stored uppercase), 1 to 16
    /// letters or digits, each listed once; rates are plain decimals above zero.
    public init(parsing text: String) throws(PaymentsError) {
        func invalid(_ why: String) -> PaymentsError {
            PaymentsError(.invalidConfiguration, "TOLLGATE_TOKENS '\(text.prefix(200))': \(why)")
        }
        var tokens: [Token] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let pair = item.trimmingSpaces
            guard !pair.isEmpty else { throw invalid("an empty item; write SYMBOL=RATE,SYMBOL=RATE") }
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2 else { throw invalid("'\(pair)' is not SYMBOL=RATE") }
            let symbol = String(parts[0]).trimmingSpaces.uppercased()
            guard Self.isValidSymbol(symbol) else {
                throw invalid("'\(parts[0])' is not a token symbol (1 to 16 letters or digits)")
            }
            guard !tokens.contains(where: { $0.symbol == symbol }) else { throw invalid("\(symbol) is listed twice") }
            let rate: DecimalAmount
            do {
                rate = try DecimalAmount(parsing: String(parts[1]).trimmingSpaces)
            } catch {
                throw invalid("the rate of \(symbol): \(error.message)")
            }
            guard !rate.isZero else { throw invalid("the rate of \(symbol) must be above zero") }
            tokens.append(Token(symbol: symbol, rate: rate))
        }
        self.tokens = tokens
    }

    /// Whether `symbol` is 1 to 16 ASCII uppercase letters or digits.
    public static func isValidSymbol(_ symbol: String) -> Bool {
        let bytes = symbol.utf8
        return (1...16).contains(bytes.count)
            && bytes.allSatisfy {
                ($0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9"))
            }
    }

    /// The token with this symbol (case-insensitive), if supported.
    public func token(_ symbol: String) -> Token? {
        let wanted = symbol.uppercased()
        return tokens.first { $0.symbol == wanted }
    }

    /// The token symbol a provider's currency code names: MoonPay's `usdt_trx` and
    /// AlchemyPay's `USDT` both give `USDT` (uppercased, network suffix after `_` dropped).
    public static func symbol(forProviderCurrency currency: String) -> String {
        String(currency.prefix { $0 != "_" }).uppercased()
    }

    /// Credits for `amount` (a decimal string as a provider sent it; JSON exponents accepted)
    /// of the token a provider's `currency` code names.
    ///
    /// Throws `unsupported_token`, `invalid_amount` (malformed, negative, NaN, too precise) or
    /// `amount_out_of_range`.
    public func credits(forAmount amount: String, currency: String) throws(PaymentsError) -> Money {
        let symbol = Self.symbol(forProviderCurrency: currency)
        guard let token = token(symbol) else {
            throw PaymentsError(.unsupportedToken, "'\(currency.prefix(40))' is not a supported token (\(symbols))")
        }
        return try Self.credits(for: DecimalAmount(parsing: amount, allowExponent: true), rate: token.rate)
    }

    /// `amount × rate` credits, rounded down to whole micro-credits.
    ///
    /// Throws `amount_out_of_range` beyond `Money.maximum`.
    public static func credits(for amount: DecimalAmount, rate: DecimalAmount) throws(PaymentsError) -> Money {
        let outOfRange = PaymentsError(
            .amountOutOfRange, "\(amount) at \(rate) credits is more than \(Money.maximum) credits")
        // micros = floor(a.sig × r.sig × 10^6 / 10^(a.scale + r.scale))
        let product = amount.significand.multipliedFullWidth(by: rate.significand)
        let shift = amount.scale + rate.scale - 6  // at most 2 × maximumScale - 6 = 34
        let micros: UInt128
        if shift >= 0 {
            let divisor = DecimalAmount.powerOfTen(shift)
            // The quotient fits 128 bits exactly when high < divisor.
            guard product.high < divisor else { throw outOfRange }
            micros = divisor.dividingFullWidth(product).quotient
        } else {
            guard product.high == 0 else { throw outOfRange }
            let (scaled, overflow) = product.low.multipliedReportingOverflow(by: DecimalAmount.powerOfTen(-shift))
            guard !overflow else { throw outOfRange }
            micros = scaled
        }
        guard micros <= UInt128(Money.maximum.micros), let money = Money(micros: Int64(micros)) else {
            throw outOfRange
        }
        return money
    }

    /// The symbols, comma-separated.
    public var symbols: String { tokens.map(\.symbol).joined(separator: ",") }

    /// The table in `TOLLGATE_TOKENS` form.
    public var description: String { tokens.map { "\($0.symbol)=\($0.rate)" }.joined(separator: ",") }
}

extension StringProtocol {
    /// The text without leading and trailing spaces and tabs.
    var trimmingSpaces: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return String(self[first...last])
    }
}
