// Prices are exact rationals: `micros` micro-credits per `per` units. Charging q units adds
// q × price to the carry of the account and item (meter, or meter@model), charges the whole
// micro-credits and carries the rest, so the total charged for any split of a usage is
// ⌊(carry + q_total × price) / per⌋. A hold's estimate rounds each item up, without carries.
//
// Usage text, item names and the price lookup are the model's own (README: `METER[@MODEL]=QTY,...`;
// a meter's price for one model, else the meter's price for any model): none of the engine's
// `UsageItem`, `PriceKey` or price book is used here, so a parsing or lookup bug in the engine
// is not mirrored.

struct ModelPrice: Hashable, Sendable, CustomStringConvertible {
    var micros: Int64
    var per: Int64

    /// What a hold reserves for `quantity` units.
    func estimate(_ quantity: Int64) -> Int64 {
        ceilingDivision(quantity * micros, per)
    }

    var description: String { "\(micros)µ/\(per)" }
}

/// One item of usage as the model reads it: a meter, maybe a model, a quantity.
struct ModelUsageItem: Hashable, Sendable {
    var meter: String
    var model: String?
    var quantity: Int64

    /// `meter` or `meter@model`: what prices, carries and reported usage are kept by.
    var name: String { modelItemName(meter, model) }
    /// Whether the meter counts on the token rate (`tokens.*`).
    var isTokens: Bool { meter.hasPrefix("tokens.") }
}

func modelItemName(_ meter: String, _ model: String?) -> String {
    model.map { meter + "@" + $0 } ?? meter
}

/// Parses usage as the CLI's `--usage` and the check URL write it: 1 to 64 items
/// `METER[@MODEL]=QTY` separated by commas (spaces around an item ignored); names are 1 to 128
/// letters, digits or `._-:/`; a quantity is a whole number from 1 to 2^53 − 1. `allowEmpty`:
/// the empty text is no items (a settle's final usage of nothing). nil: refused (invalid_argument).
func parseModelUsage(_ text: String, allowEmpty: Bool = false) -> [ModelUsageItem]? {
    if text.isEmpty { return allowEmpty ? [] : nil }
    let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { part -> String in
        var s = Substring(part)
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return String(s)
    }
    guard parts.count <= 64 else { return nil }
    func validName(_ name: Substring) -> Bool {
        !name.isEmpty && name.utf8.count <= 128 && name.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || "._-:/".unicodeScalars.contains($0)
        }
    }
    var items: [ModelUsageItem] = []
    for part in parts {
        guard let equals = part.lastIndex(of: "=") else { return nil }
        let digits = part[part.index(after: equals)...]
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
              
              let quantity = Int64(digits), quantity >= 1, quantity <= maximumExact else { return nil }
        let name = part[..<equals]
        let meter: Substring
        var model: Substring?
        if let at = name.firstIndex(of: "@") {
            meter = name[..<at]
            model = name[name.index(after: at)...]
        } else {
            meter = name
        }
        guard validName(meter), model.map(validName) ?? true else { return nil }
        items.append(ModelUsageItem(meter: String(meter), model: model.map(String.init), quantity: quantity))
    }
    return items
}

/// Writes usage items back as text (the inverse of `parseModelUsage`).
func modelUsageText(_ items: [ModelUsageItem]) -> String {
    items.map { "\($0.name)=\($0.quantity)" }.joined(separator: ",")
}

/// The operator's prices, by item name: a meter's price for one model (`meter@model`), or for
/// any model without its own (`meter`).
struct ModelPriceBook: Sendable {
    var prices: [String: ModelPrice] = [:]

    mutating func set(meter: String, model: String?, _ price: ModelPrice?) {
        prices[modelItemName(meter, model)] = price
    }

    func price(meter: String, model: String?) -> ModelPrice? {
        if let exact = prices[modelItemName(meter, model)] { return exact }
        guard model != nil else { return nil }
        return prices[meter]
    }
}

/// One usage item with the price it is charged at.
struct PricedItem: Hashable, Sendable {
    var meter: String
    var model: String?
    var quantity: Int64
    var price: ModelPrice

    var name: String { modelItemName(meter, model) }
    var isTokens: Bool { meter.hasPrefix("tokens.") }
}

extension ModelPriceBook {
    /// The items priced, or nil when any has no price (unknown_meter).
    func priced(_ usage: [ModelUsageItem]) -> [PricedItem]? {
        var items: [PricedItem] = []
        for item in usage {
            guard let price = price(meter: item.meter, model: item.model) else { return nil }
            items.append(PricedItem(meter: item.meter, model: item.model, quantity: item.quantity, price: price))
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
