/// A quantity of one meter (and optionally model) used by a call.
public struct UsageItem: Sendable, Hashable {
    public var key: PriceKey
    public var quantity: Int64

    public init(meter: String, model: String? = nil, quantity: Int64) throws(TollgateError) {
        key = try PriceKey(meter: meter, model: model)
        // A zero quantity is refused: it charges nothing yet passes every limit and cap as an
        // allowed call would. A settle whose final usage of an item is nothing leaves it out.
        guard quantity >= 1, quantity <= Money.maximum.micros else {
            throw TollgateError(.invalidArgument, "a quantity must be between 1 and 2^53")
        }
        self.quantity = quantity
    }

    /// Whether this usage counts on the token-rate limit (meters named `tokens.*`).
    public var isTokens: Bool { key.meter.hasPrefix("tokens.") }
}

extension UsageItem {
    /// Parses `METER[@MODEL]=QTY,...` as the CLI's `--usage` and the check URL's `usage` parameter
    /// write it, for example `tokens.input@m=1200,tokens.output@m=300`.
    public static func parseList(_ text: String) throws(TollgateError) -> [UsageItem] {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
        guard !text.isEmpty, parts.count <= 64 else {
            throw TollgateError(.invalidArgument, "usage is 1 to 64 items like tokens.input@model=1200, separated by commas")
        }
        var items: [UsageItem] = []
        for part in parts {
            let trimmed = part.trimmingSpaces
            guard let equals = trimmed.lastIndex(of: "="),
                  let quantity = Int64(trimmed[trimmed.index(after: equals)...]) else {
                throw TollgateError(.invalidArgument, "'\(trimmed.prefix(60))' is not METER[@MODEL]=QUANTITY")
            }
            let name = trimmed[..<equals]
            if let at = name.firstIndex(of: "@") {
                items.append(try UsageItem(meter: String(name[..<at]), model: String(name[name.index(after: at)...]), quantity: quantity))
            } else {
                items.append(try UsageItem(meter: String(name), quantity: quantity))
            }
        }
        return items
    }
}

extension Substring {
    var trimmingSpaces: Substring {
        var result = self
        while result.first == " " { result = result.dropFirst() }
        while result.last == " " { result = result.dropLast() }
        return result
    }
}
