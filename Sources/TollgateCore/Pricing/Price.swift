/// An exact price: `price` credits per `per` units of a meter (for example 0.15 per
/// 1,000,000 input tokens).
public struct Price: Sendable, Hashable {
    public var price: Money
    public var per: Int64

    public init(price: Money, per: Int64) throws(TollgateError) {
        guard price.micros >= 0 else { throw TollgateError(.invalidAmount, "a price must not be negative") }
        guard per >= 1, per <= 1_000_000_000_000 else {
            throw TollgateError(.invalidArgument, "per must be between 1 and 10^12 units")
        }
        self.price = price
        self.per = per
    }

    /// The exact cost of `quantity` units in micro-credits as a rational `numerator / per`.
    func numerator(for quantity: Int64) -> Int64? {
        let (product, overflow) = quantity.multipliedReportingOverflow(by: price.micros)
        guard !overflow, product <= Money.maximum.micros - per else { return nil }
        return product
    }
}

/// What a price applies to: a meter, and optionally one model of it.
public struct PriceKey: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var meter: String
    /// nil: the meter's price for any model without one of its own.
    public var model: String?

    public init(meter: String, model: String? = nil) throws(TollgateError) {
        try Self.validate(meter, "meter")
        if let model { try Self.validate(model, "model") }
        self.meter = meter
        self.model = model
    }

    /// Meter and model names: 1 to 128 characters of letters, digits and `._-:/`.
    static func validate(_ name: String, _ what: String) throws(TollgateError) {
        let allowed = name.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"),
                 UInt8(ascii: "-"), UInt8(ascii: ":"), UInt8(ascii: "/"):
                return true
            default:
                return false
            }
        }
        guard !name.isEmpty, name.utf8.count <= 128, allowed else {
            throw TollgateError(.invalidArgument, "a \(what) name is 1 to 128 letters, digits or ._-:/ (got '\(name.prefix(40))')")
        }
    }

    /// `meter` or `meter@model`: the field name in Redis and the carry's name.
    public var description: String { model.map { "\(meter)@\($0)" } ?? meter }

    public static func < (lhs: PriceKey, rhs: PriceKey) -> Bool { lhs.description < rhs.description }
}

/// One line of the price book as JSON: `{"meter", "model", "price", "per"}`.
public struct PriceBookEntry: Sendable, Hashable, Encodable {
    public var key: PriceKey
    public var price: Price

    public init(key: PriceKey, price: Price) {
        self.key = key
        self.price = price
    }

    private enum CodingKeys: String, CodingKey { case meter, model, price, per }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(key.meter, forKey: .meter)
        try container.encode(key.model, forKey: .model)
        try container.encode(price.price, forKey: .price)
        try container.encode(price.per, forKey: .per)
    }
}
