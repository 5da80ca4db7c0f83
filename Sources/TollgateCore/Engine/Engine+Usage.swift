import Foundation
import TollgateRedis

extension Engine {
    /// At most this many aggregate hashes are read for one breakdown: 166 days by the hour,
    /// 10 years by the day; without a period, months and days tile any range in far fewer.
    static let maximumUsageBuckets = 4_000

    /// Usage of an account over `[from, to)` (rounded out to whole hours), grouped as asked.
    /// Reads the aggregates of the fewest whole months, days and hours that tile the range:
    /// the cost is O(periods × groups), never O(ledger entries).
    public func usage(_ id: AccountID, from: Int64, to: Int64, by grouping: UsageGrouping) async throws(TollgateError) -> UsageBreakdown {
        let hour: Int64 = 3_600_000
        let start = Self.floorDiv(from, hour) * hour
        let end = -Self.floorDiv(-to, hour) * hour
        guard end > start else { throw TollgateError(.invalidArgument, "'to' must be after 'from'") }
        let keys = AccountKeys(id)
        guard try await send(RedisCommand(["EXISTS", keys.account])).int64 == 1 else {
            throw TollgateError(.accountNotFound, "no account '\(id)'")
        }
        let buckets = try Self.usageBuckets(from: start, to: end, finest: grouping.period)
        // Read concurrently so the client pipelines the reads.
        let replies = await withTaskGroup(of: (Int, Result<RESPValue, TollgateError>).self) { group in
            for (index, bucket) in buckets.enumerated() {
                group.addTask {
                    do throws(RedisError) {
                        return (index, .success(try await redis.send(RedisCommand(["HGETALL", keys.usage(bucket.granularity, bucket.period)]))))
                    } catch {
                        return (index, .failure(TollgateError(error)))
                    }
                }
            }
            var all = [Result<RESPValue, TollgateError>?](repeating: nil, count: buckets.count)
            for await (index, reply) in group { all[index] = reply }
            return all
        }
        struct GroupKey: Hashable { var meter, model, key: String?; var periodStart: Int64? }
        var sums: [GroupKey: (amount: Int64, quantity: Int64)] = [:]
        var totalAmount: Int64 = 0
        var totalQuantity: Int64 = 0
        for (bucket, reply) in zip(buckets, replies) {
            guard case .success(let value)? = reply else {
                if case .failure(let error)? = reply { throw error }
                continue
            }
            let flat = value.array ?? []
            var index = 0
            while index + 1 < flat.count {
                defer { index += 2 }
                guard let field = flat[index].string, let number = flat[index + 1].string.flatMap({ Int64($0) }) else { continue }
                let parts = field.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
                guard parts.count == 4 else { continue }
                var key = GroupKey()
                for dimension in grouping.dimensions {
                    switch dimension {
                    case .meter: key.meter = parts[1]
                    case .model: key.model = parts[2]
                    case .key: key.key = parts[3]
                    }
                }
                key.periodStart = grouping.period.map { Self.periodStart(of: bucket.start, $0) }
                if parts[0] == "c" {
                    try sums[key, default: (0, 0)].amount.addStored(number, "the usage amount")
                    try totalAmount.addStored(number, "the usage amount")
                } else {
                    try sums[key, default: (0, 0)].quantity.addStored(number, "the usage quantity")
                    try totalQuantity.addStored(number, "the usage quantity")
                }
            }
        }
        var groups: [UsageGroup] = []
        for (key, sum) in sums {
            var label: String?
            if let start = key.periodStart, let period = grouping.period { label = Self.periodLabel(start, period) }
            groups.append(UsageGroup(meter: key.meter, model: key.model, key: key.key, periodStart: key.periodStart,
                                     period: label, amount: Money(micros: sum.amount) ?? .zero, quantity: sum.quantity))
        }
        groups.sort { a, b in
            let left: (Int64, String, String, String) = (a.periodStart ?? 0, a.meter ?? "", a.model ?? "", a.key ?? "")
            let right: (Int64, String, String, String) = (b.periodStart ?? 0, b.meter ?? "", b.model ?? "", b.key ?? "")
            return left < right
        }
        return UsageBreakdown(from: start, to: end, grouping: grouping, groups: groups,
                              totalAmount: Money(micros: totalAmount) ?? .zero, totalQuantity: totalQuantity)
    }

    struct UsageBucket: Hashable {
        var granularity: Character
        var period: Int64
        var start: Int64
    }

    /// The fewest whole months, days and hours (none coarser than `finest`) that tile
    /// `[from, to)`, both on hour boundaries.
    static func usageBuckets(from: Int64, to: Int64, finest: UsageGrouping.Period?) throws(TollgateError) -> [UsageBucket] {
        let hour: Int64 = 3_600_000, day: Int64 = 86_400_000
        let allowMonths = finest == nil || finest == .month
        let allowDays = allowMonths || finest == .day
        var buckets: [UsageBucket] = []
        var t = from
        while t < to {
            let periods = SpendPeriods(milliseconds: t)
            if allowMonths, t == monthStart(periods.month), periods.monthEnd <= to {
                buckets.append(UsageBucket(granularity: "m", period: periods.month, start: t))
                t = periods.monthEnd
            } else if allowDays, t % day == 0, t + day <= to {
                buckets.append(UsageBucket(granularity: "d", period: periods.day, start: t))
                t += day
            } else {
                buckets.append(UsageBucket(granularity: "h", period: periods.hour, start: t))
                t += hour
            }
            if buckets.count > maximumUsageBuckets {
                throw TollgateError(.invalidArgument, "the range is too long for this grouping (over \(maximumUsageBuckets) periods)")
            }
        }
        return buckets
    }

    static func monthStart(_ month: Int64) -> Int64 {
        SpendPeriods.days(fromCivil: floorDiv(month, 12), month - floorDiv(month, 12) * 12 + 1, 1) * 86_400_000
    }

    static func periodStart(of time: Int64, _ period: UsageGrouping.Period) -> Int64 {
        if let length = period.milliseconds { return floorDiv(time, length) * length }
        return monthStart(SpendPeriods(milliseconds: time).month)
    }

    /// `2026-11-25T14`, `2026-11-25` or `2026-11`.
    static func periodLabel(_ start: Int64, _ period: UsageGrouping.Period) -> String {
        let iso = Timestamp.iso8601(milliseconds: start)
        switch period {
        case .hour: return String(iso.prefix(13))
        case .day: return String(iso.prefix(10))
        case .month: return String(iso.prefix(7))
        }
    }

    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    // MARK: Payment history

    /// The kinds the payment history holds.
    public static let paymentKinds: Set<LedgerKind> = [.topup, .deposit, .coupon, .grant, .adjustment, .expire]

    /// An account's payment history (top-ups, deposits with their status, coupons, grants,
    /// adjustments and expiries of promotional credit), newest first, optionally of some kinds
    /// only and within `[from, to)`. A deposit appears when started (`status` pending, amount
    /// 0), and again when completed (the credit) or failed.
    public func payments(
        _ id: AccountID, kinds: Set<LedgerKind>? = nil, from: Int64? = nil, to: Int64? = nil,
        limit: Int = 50, cursor: String? = nil
    ) async throws(TollgateError) -> LedgerPage {
        guard (1...1000).contains(limit) else { throw TollgateError(.invalidArgument, "limit must be between 1 and 1000") }
        if let cursor, !LedgerEntry.isValidID(cursor) {
            throw TollgateError(.invalidArgument, "'\(cursor.prefix(40))' is not a cursor")
        }
        if let kinds, !kinds.isSubset(of: Self.paymentKinds) {
            throw TollgateError(.invalidArgument, "the payment history holds topup, deposit, coupon, grant, adjustment and expire entries")
        }
        let keys = AccountKeys(id)
        guard try await send(RedisCommand(["EXISTS", keys.account])).int64 == 1 else {
            throw TollgateError(.accountNotFound, "no account '\(id)'")
        }
        var entries: [LedgerEntry] = []
        var upper = cursor.map { "(" + $0 } ?? to.map { "(\($0)-0" } ?? "+"
        let lower = from.map { "\($0)-0" } ?? "-"
        // A kind filter reads past other kinds; a page reads at most this many entries and
        // then hands back a cursor, so one request's work stays bounded.
        var budget = 10_000
        var scannedTo: String?
        var exhausted = false
        while entries.count < limit, budget > 0 {
            let count = min(max(limit, 200), budget)
            let page = try LedgerEntry.parse(
                streamEntries: try await send(RedisCommand(["XREVRANGE", keys.payments, upper, lower, "COUNT", String(count)])),
                account: id)
            budget -= page.count
            for entry in page where entries.count < limit {
                scannedTo = entry.id
                if kinds?.contains(entry.kind) ?? true { entries.append(entry) }
            }
            guard page.count == count, let last = page.last else { exhausted = entries.count < limit || page.last?.id == scannedTo; break }
            upper = "(" + last.id
        }
        let more = entries.count == limit || (!exhausted && budget <= 0)
        return LedgerPage(entries: entries, nextCursor: more ? scannedTo : nil)
    }
}
