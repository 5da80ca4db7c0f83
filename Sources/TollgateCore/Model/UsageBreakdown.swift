/// What a usage breakdown groups by: any of meter, model and key, and at most one period.
public struct UsageGrouping: Sendable, Hashable, CustomStringConvertible {
    public enum Dimension: String, Sendable, Hashable, CaseIterable { case meter, model, key }
    public enum Period: String, Sendable, Hashable, CaseIterable {
        case hour, day, month

        var milliseconds: Int64? {
            switch self {
            case .hour: 3_600_000
            case .day: 86_400_000
            case .month: nil
            }
        }
    }

    public var dimensions: [Dimension]
    public var period: Period?

    public init(dimensions: [Dimension] = [.meter], period: Period? = nil) {
        self.dimensions = dimensions
        self.period = period
    }

    /// Parses `meter,model,day`; `invalid_argument` on an unknown or repeated name, or two periods.
    public init(parsing text: String) throws(TollgateError) {
        var dimensions: [Dimension] = []
        var period: Period?
        for part in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !part.isEmpty {
            if let dimension = Dimension(rawValue: part), !dimensions.contains(dimension) {
                dimensions.append(dimension)
            } else if let found = Period(rawValue: part), period == nil {
                period = found
            } else {
                throw TollgateError(.invalidArgument,
                    "'by' takes meter, model, key and one of hour, day, month, each once (got '\(part.prefix(40))')")
            }
        }
        self.init(dimensions: dimensions, period: period)
    }

    public var description: String {
        (dimensions.map(\.rawValue) + (period.map { [$0.rawValue] } ?? [])).joined(separator: ",")
    }
}

/// One group of a usage breakdown: what was charged for it and the quantity used.
public struct UsageGroup: Sendable, Hashable {
    public var meter: String?
    public var model: String?
    public var key: String?
    /// The period's start (ms since the epoch) when grouped by period.
    public var periodStart: Int64?
    /// The period as text: `2026-11-25T14` (hour), `2026-11-25` (day), `2026-11` (month).
    public var period: String?
    /// Net charged: debits and captures less refunds.
    public var amount: Money
    public var quantity: Int64
}

/// Usage over a time range, read from the aggregates Lua keeps per hour, day and month.
public struct UsageBreakdown: Sendable, Hashable {
    /// The range covered, rounded out to whole hours (ms since the epoch, `to` exclusive).
    public var from: Int64
    public var to: Int64
    public var grouping: UsageGrouping
    /// The groups, ordered by period, then meter, model and key.
    public var groups: [UsageGroup]
    public var totalAmount: Money
    public var totalQuantity: Int64
}
