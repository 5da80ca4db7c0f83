import Testing
@testable import TollgateCore

@Suite("Money: parsing and formatting")
struct MoneyTests {
    @Test("valid amounts parse to exact micro-credits", arguments: [
        ("0", 0), ("1", 1_000_000), ("12.5", 12_500_000), ("0.000001", 1), ("0.1", 100_000),
        ("007.50", 7_500_000), ("9007199254.740991", 9_007_199_254_740_991), ("123456.123456", 123_456_123_456),
    ] as [(String, Int64)])
    func parses(text: String, micros: Int64) throws {
        #expect(try Money(parsing: text).micros == micros)
    }

    @Test("malformed or out-of-range amounts are refused", arguments: [
        "", "-", ".", "1.", ".5", "1.0000001", "1e3", "1E3", "+1", " 1", "1 ", "NaN", "nan", "inf", "Infinity",
        "0x10", "1,5", "1.2.3", "١", "9007199254.740992", "99999999999", "12345678901234567890", "--1", "1-",
    ])
    func refuses(text: String) {
        #expect(throws: TollgateError.self) { try Money(parsing: text) }
        do {
            _ = try Money(parsing: text)
        } catch {
            #expect(error.code == .invalidAmount)
        }
    }

    @Test("negative amounts only where allowed")
    func negatives() throws {
        #expect(throws: TollgateError.self) { try Money(parsing: "-1") }
        #expect(try Money(parsing: "-1.5", allowNegative: true).micros == -1_500_000)
        #expect(try Money(parsing: "-9007199254.740991", allowNegative: true).micros == -9_007_199_254_740_991)
        #expect(throws: TollgateError.self) { try Money(parsing: "-9007199254.740992", allowNegative: true) }
    }

    @Test("formatting drops trailing zeros and round-trips", arguments: [
        (0, "0"), (1, "0.000001"), (1_000_000, "1"), (12_500_000, "12.5"), (-3_000_000, "-3"),
        (-1, "-0.000001"), (100_000, "0.1"), (9_007_199_254_740_991, "9007199254.740991"), (10_000_010, "10.00001"),
    ] as [(Int64, String)])
    func formats(micros: Int64, text: String) throws {
        let money = try #require(Money(micros: micros))
        #expect(money.description == text)
        #expect(try Money(parsing: text, allowNegative: true) == money)
    }

    @Test("every micro amount in a sweep round-trips through text")
    func roundTripSweep() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<5000 {
            let micros = Int64.random(in: -Money.maximum.micros...Money.maximum.micros, using: &generator)
            let money = try #require(Money(micros: micros))
            #expect(try Money(parsing: money.description, allowNegative: true) == money)
        }
    }

    @Test("amounts beyond 2^53 micro-credits cannot be made")
    func bounds() {
        #expect(Money(micros: 9_007_199_254_740_992) == nil)
        #expect(Money(micros: -9_007_199_254_740_992) == nil)
        #expect(Money(micros: Int64.min) == nil)
    }
}

@Suite("Price.cost")
struct PriceCostTests {
    @Test("whole micro-credits and the carried remainder; splits add up")
    func cost() throws {
        let price = try Price(price: try Money(parsing: "0.15"), per: 1_000_000)
        #expect(price.cost(of: 1_000_000)! == (150_000, 0))
        #expect(price.cost(of: 7)! == (1, 50_000))
        var carry: Int64 = 0, total: Int64 = 0
        for _ in 0..<1000 {
            let (micros, rest) = price.cost(of: 7, carry: carry)!
            total += micros
            carry = rest
        }
        #expect(total == price.cost(of: 7000)!.micros)
        #expect(price.cost(of: -1) == nil)
        #expect(price.cost(of: 1, carry: 1_000_000) == nil)
    }
}
