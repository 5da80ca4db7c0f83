import Testing
import TollgateCore
@testable import TollgatePayments

@Suite("Token amounts and rates")
struct TokenTableTests {
    func credits(_ amount: String, rate: String = "1") throws -> Int64 {
        try TokenTable.credits(for: DecimalAmount(parsing: amount, allowExponent: true), rate: DecimalAmount(parsing: rate)).micros
    }

    @Test("conversion is exact and rounds down to micro-credits", arguments: [
        ("50", "1", 50_000_000), ("0", "1", 0), ("0.000001", "1", 1), ("0.0000009", "1", 0), ("0.0000019", "1", 1),
        ("12.3456789", "1", 12_345_678), ("12.9999999", "1", 12_999_999), ("49.1234567", "1", 49_123_456),
        ("1", "0.99", 990_000), ("0.000001", "0.99", 0), ("0.000002", "0.99", 1), ("12.3456789", "0.99", 12_222_222),
        ("100", "0.99", 99_000_000), ("3", "0.333333333333333333", 999_999), ("1.000000000000000001", "1", 1_000_000),
        ("1e-7", "1", 0), ("2.5E3", "1", 2_500_000_000), ("1e3", "0.99", 990_000_000),
        ("9007199254.740991", "1", 9_007_199_254_740_991), ("9007199254.7409919", "1", 9_007_199_254_740_991),
        ("4503599627.3704955", "2", 9_007_199_254_740_991), ("0.00000000000000000001", "99999999999999999999", 999_999),
    ] as [(String, String, Int64)])
    func converts(amount: String, rate: String, micros: Int64) throws {
        #expect(try credits(amount, rate: rate) == micros)
    }

    @Test("amounts beyond 2^53 micro-credits are amount_out_of_range", arguments: [
        ("9007199254.740992", "1"), ("9007199255", "1"), ("100000000000", "1"), ("99999999999999999999999999999999999999", "1"),
        ("4503599627.370496", "2"), ("1e37", "99999999999999999999"), ("99999999999999999999999999999999999999", "99999999999999999999"),
        ("1e30", "0.000001"),
    ])
    func overflows(amount: String, rate: String) throws {
        let error = try #require(throws: PaymentsError.self) { try credits(amount, rate: rate) }
        #expect(error.code == .amountOutOfRange)
    }

    @Test("malformed, negative or NaN amounts are invalid_amount", arguments: [
        "", "-1", "-0", "+1", " 1", "1 ", "NaN", "nan", "Infinity", "-Infinity", ".5", "5.", "1.2.3", "1,5", "0x10", "1e", "1e+",
        "e5", "1_000", "１", "0.000000000000000000001", "123456789012345678901234567890123456789", "1e1001",
    ])
    func refuses(amount: String) throws {
        let error = try #require(throws: PaymentsError.self) { try DecimalAmount(parsing: amount, allowExponent: true) }
        #expect(error.code == .invalidAmount)
    }

    @Test("exponents only where allowed")
    func exponents() throws {
        #expect(throws: PaymentsError.self) { try DecimalAmount(parsing: "1e3") }
        #expect(try DecimalAmount(parsing: "1e3", allowExponent: true).description == "1000")
        #expect(try DecimalAmount(parsing: "1.5e-3", allowExponent: true).description == "0.0015")
    }

    @Test("canonical text drops trailing and leading zeros", arguments: [
        ("0", "0"), ("000", "0"), ("0.000", "0"), ("007.50", "7.5"), ("12.3456789", "12.3456789"), ("0.000001", "0.000001"),
        ("100", "100"), ("1.000000000000000000000", "1"), ("0.10000000000000000000000000", "0.1"),
    ])
    func canonical(text: String, expected: String) throws {
        #expect(try DecimalAmount(parsing: text).description == expected)
    }

    @Test("the default table is USDT=1,USDC=1")
    func defaults() throws {
        #expect(TokenTable.default.description == "USDT=1,USDC=1")
        #expect(try TokenTable.default.credits(forAmount: "50", currency: "usdt_trx").micros == 50_000_000)
        #expect(try TokenTable.default.credits(forAmount: "49.1234567", currency: "USDC").micros == 49_123_456)
    }

    @Test("parsing a table: case, spaces and order")
    func parses() throws {
        let table = try TokenTable(parsing: " usdt=1 , USDC = 1,DAI=0.99 ")
        #expect(table.description == "USDT=1,USDC=1,DAI=0.99")
        #expect(table.token("dai")?.rate.description == "0.99")
        #expect(try table.credits(forAmount: "10.0000001", currency: "dai").micros == 9_900_000)
        #expect(table.token("BUSD") == nil)
    }

    @Test("bad tables are invalid_configuration", arguments: [
        "", ",", "USDT", "USDT=", "=1", "USDT=1,", "USDT=1,,USDC=1", "USDT=0", "USDT=0.000", "USDT=-1", "USDT=abc",
        "USDT=1,usdt=2", "US DT=1", "USDT$=1", "ABCDEFGHIJKLMNOPQ=1", "USDT=1e3", "USDT:1",
    ])
    func badTables(text: String) throws {
        let error = try #require(throws: PaymentsError.self) { try TokenTable(parsing: text) }
        #expect(error.code == .invalidConfiguration)
        #expect(error.message.contains("TOLLGATE_TOKENS"))
    }

    @Test("provider currency codes name tokens", arguments: [
        ("usdt_trx", "USDT"), ("usdc", "USDC"), ("USDT", "USDT"), ("usdc_polygon", "USDC"), ("dai_bsc", "DAI"),
    ])
    func symbols(currency: String, symbol: String) {
        #expect(TokenTable.symbol(forProviderCurrency: currency) == symbol)
    }

    @Test("unsupported tokens and bad amounts from providers are refused with their codes")
    func providerAmounts() throws {
        let unsupported = try #require(throws: PaymentsError.self) {
            try TokenTable.default.credits(forAmount: "1", currency: "eth")
        }
        #expect(unsupported.code == .unsupportedToken)
        for amount in ["-5", "NaN", "Infinity", "1.5.5"] {
            let error = try #require(throws: PaymentsError.self) {
                try TokenTable.default.credits(forAmount: amount, currency: "usdt")
            }
            #expect(error.code == .invalidAmount)
        }
    }

    @Test("random amounts and rates agree with a reference in decimal string arithmetic")
    func randomAgreement() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let whole = UInt64.random(in: 0...99_999, using: &generator)
            let fractionDigits = Int.random(in: 0...18, using: &generator)
            let fraction = (0..<fractionDigits).map { _ in String(Int.random(in: 0...9, using: &generator)) }.joined()
            let amount = fractionDigits == 0 ? "\(whole)" : "\(whole).\(fraction)"
            let rateHundredths = UInt64.random(in: 1...300, using: &generator)
            let rate = "\(rateHundredths / 100).\(String(format: "%02d", Int(rateHundredths % 100)))"
            // Reference: amount × 10^18 as an integer, × rate in hundredths, / 10^(18 + 2 - 6).
            let padded = fraction + String(repeating: "0", count: 18 - fractionDigits)
            let amountAtto = UInt128(whole) * 1_000_000_000_000_000_000 + UInt128(padded)!
            let expected = amountAtto * UInt128(rateHundredths) / 100_000_000_000_000
            #expect(try credits(amount, rate: rate) == Int64(expected), "\(amount) × \(rate)")
        }
    }
}
