import TollgateCore

// Prices are exact rationals: `micros` micro-credits per `per` units. Charging q units adds
// q × price to the carry of the account and item (meter, or meter@model), charges the whole
// micro-credits and carries the rest, so the total charged for any split of a usage is
// ⌊(carry + q_total × price) / per⌋. A hold's estimate rounds each item up, without carries.

struct ModelPrice: Hashable, Sendable, CustomStringConvertible {
    var micros: Int64
    var per: Int64

    /// What a hold reserves for `quantity` units.
    func estimate(_ quantity: Int64) -> Int64 {
        ceilingDivision(quantity * micros, per)
    }

    var description: String { "\(micros)µ/\(per)" }
}

/// The operator's prices: a meter's price for one model, or for any model without its own.
struct ModelPriceBook: Sendable {
    var prices: [PriceKey: ModelPrice] = [:]

    func price(for key: PriceKey) -> ModelPrice? {
        if let exact = prices[key] { return exact }
        guard key.model != nil, let meterWide = try? PriceKey(meter: key.meter) else { return nil }
        return prices[meterWide]
    }
}

/// One usage item with the price it is charged at.
struct PricedItem: Hashable, Sendable {
    /// `meter` or `meter@model`: what carries and reported usage are kept by.
    var name: String
    var quantity: Int64
    var price: ModelPrice
    /// Whether the meter counts on the token rate (`tokens.*`).
    var isTokens: Bool
}

extension ModelPriceBook {
    /// The items priced, or nil when any has no price (unknown_meter).
    func priced(_ usage: [UsageItem]) -> [PricedItem]? {
        var items: [PricedItem] = []
        for item in usage {
            guard let price = price(for: item.key) else { return nil }
            items.append(PricedItem(name: item.key.description, quantity: item.quantity, price: price,
                                    isTokens: item.key.meter.hasPrefix("tokens.")))
        }
        return items
    }
}

func tokenCount(_ items: [PricedItem]) -> Int64 {
    items.filter(\.isTokens).reduce(0) { $0 + $1.quantity }
}

/// The sub-micro-credit remainders of one account, by item name.
struct Carries: Hashable, Sendable {
    private var remainders: [String: Int64] = [:]

    /// Charges `quantity` units (negative: gives them back) and returns the whole
    /// micro-credits due (negative: refunded).
    mutating func charge(_ quantity: Int64, of name: String, at price: ModelPrice) -> Int64 {
        let (cost, rest) = floorDivisionWithRemainder(remainders[name, default: 0] + quantity * price.micros, price.per)
        remainders[name] = rest
        return cost
    }

    func remainder(of name: String) -> Int64 { remainders[name, default: 0] }

    /// For tests that tamper with the state on purpose.
    mutating func setRemainder(_ remainder: Int64, of name: String) { remainders[name] = remainder }
}
