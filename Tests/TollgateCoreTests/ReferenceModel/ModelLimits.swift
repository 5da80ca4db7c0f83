import TollgateCore

// The limits of one scope (an account or an API key), as plain in-memory values.
//
// Rules:
//   * Request rates rps/rpm/rph are GCRA windows with a burst (one `burst` per scope, shared by
//     its three windows; default: the window's own limit). A request adds one period of
//     "excess"; the excess drains by `rate` per ms; a request is admitted while the excess
//     stays within burst × period.
//   * tpm is the same with tokens instead of requests (its burst is the limit itself);
//     tokens are the quantities of meters named `tokens.*`.
//   * Concurrency counts the open holds made by authorize through the scope.
//   * Spend caps count spend in the current UTC hour/day/month (ModelPeriods, the model's own
//     calendar) and in all.
//   * A window's state changes only when the window's limit is set; open holds and spend are
//     counted whether a limit is set or not.

/// A rate window: `rate` per `period` milliseconds.
enum RateWindow: CaseIterable, Hashable, Sendable {
    case second, minute, hour, tokensPerMinute

    static let requestWindows: [RateWindow] = [.second, .minute, .hour]

    var limit: LimitName {
        switch self {
        case .second: .rps
        case .minute: .rpm
        case .hour: .rph
        case .tokensPerMinute: .tpm
        }
    }

    var period: Int64 {
        switch self {
        case .second: 1_000
        case .minute, .tokensPerMinute: 60_000
        case .hour: 3_600_000
        }
    }
}

/// A GCRA window's state: the excess as it was at `at`.
struct GCRAState: Hashable, Sendable {
    var at: Int64
    var excess: Int64

    /// The excess drained to `now` at `rate` per millisecond (time never drains backwards).
    func excess(at now: Int64, rate: Int64) -> Int64 {
        max(0, excess - max(0, now - at).saturatingProduct(rate))
    }
}

/// The calendar periods of spend caps.
enum CapPeriod: CaseIterable, Hashable, Sendable {
    case hour, day, month

    var limit: LimitName {
        switch self {
        case .hour: .hourlyCap
        case .day: .dailyCap
        case .month: .monthlyCap
        }
    }

    func id(_ periods: ModelPeriods) -> Int64 {
        switch self {
        case .hour: periods.hourStart
        case .day: periods.dayStart
        case .month: periods.monthStart
        }
    }

    func end(_ periods: ModelPeriods) -> Int64 {
        switch self {
        case .hour: periods.hourEnd
        case .day: periods.dayEnd
        case .month: periods.monthEnd
        }
    }
}

/// An amount counted in one period.
struct PeriodAmount: Hashable, Sendable {
    var period: Int64
    var amount: Int64
}

/// How much spend to take back from the current periods and from the lifetime count.
struct SpendTakeBack: Hashable, Sendable {
    var byPeriod: [CapPeriod: Int64] = [:]
    var lifetime: Int64 = 0
}

/// Spend counted in the current hour, day and month, and in all. A count from a past period
/// reads as zero.
struct SpendCounters: Hashable, Sendable {
    private var byPeriod: [CapPeriod: PeriodAmount] = [:]
    private(set) var lifetime: Int64 = 0

    func spent(in period: CapPeriod, _ periods: ModelPeriods) -> Int64 {
        guard let counted = byPeriod[period], counted.period == period.id(periods) else { return 0 }
        return counted.amount
    }

    mutating func count(_ amount: Int64, _ periods: ModelPeriods) {
        precondition(amount >= 0)
        for period in CapPeriod.allCases {
            byPeriod[period] = PeriodAmount(period: period.id(periods), amount: spent(in: period, periods) + amount)
        }
        lifetime += amount
    }

    mutating func takeBack(_ back: SpendTakeBack, _ periods: ModelPeriods) {
        for period in CapPeriod.allCases {
            let amount = max(0, spent(in: period, periods) - back.byPeriod[period, default: 0])
            byPeriod[period] = PeriodAmount(period: period.id(periods), amount: amount)
        }
        lifetime = max(0, lifetime - back.lifetime)
    }
}

/// What one hold has counted as spend (its reservation, and what was charged beyond it) in
/// the periods current when it counted: the most it can take back from each when it gives
/// credit back. Spend of a period that has ended is never taken back in a later one.
struct HoldSpend: Hashable, Sendable {
    private var byPeriod: [CapPeriod: PeriodAmount] = [:]
    private var lifetime: Int64 = 0

    mutating func count(_ amount: Int64, _ periods: ModelPeriods) {
        precondition(amount >= 0)
        for period in CapPeriod.allCases {
            let id = period.id(periods)
            let before = byPeriod[period].flatMap { $0.period == id ? $0.amount : nil } ?? 0
            byPeriod[period] = PeriodAmount(period: id, amount: before + amount)
        }
        lifetime += amount
    }

    /// Takes back up to `amount` from what this hold counted in the current periods.
    mutating func takeBack(upTo amount: Int64, _ periods: ModelPeriods) -> SpendTakeBack {
        precondition(amount >= 0)
        var back = SpendTakeBack()
        for period in CapPeriod.allCases {
            guard var counted = byPeriod[period], counted.period == period.id(periods) else { continue }
            let taken = min(amount, counted.amount)
            counted.amount -= taken
            byPeriod[period] = counted
            back.byPeriod[period] = taken
        }
        back.lifetime = min(amount, lifetime)
        lifetime -= back.lifetime
        return back
    }
}

/// The limits of an account or an API key and what they have counted.
struct ModelScope: Hashable, Sendable {
    enum Label: String, Sendable { case account, key }

    let label: Label
    var limits: [LimitName: Int64] = [:]
    var rates: [RateWindow: GCRAState] = [:]
    var spend = SpendCounters()
    var openHolds: Int64 = 0

    init(_ label: Label) { self.label = label }

    func excess(_ window: RateWindow, now: Int64, rate: Int64) -> Int64 {
        rates[window]?.excess(at: now, rate: rate) ?? 0
    }

    /// The burst of a window: the scope's `burst` for request windows (default: the window's
    /// own limit), the limit itself for tokens.
    func burst(_ window: RateWindow, rate: Int64) -> Int64 {
        window == .tokensPerMinute ? rate : (limits[.burst] ?? rate)
    }
}

/// What a call asks of the limits.
struct LimitNeed: Hashable, Sendable {
    /// Open holds it adds (1 for authorize in hold mode).
    var holdSlots: Int64 = 0
    /// Requests it makes (1 for authorize).
    var requests: Int64 = 0
    /// Tokens it adds to the token rate.
    var tokens: Int64 = 0
    /// Spend it adds to the caps.
    var spend: Int64 = 0

    func units(_ window: RateWindow) -> Int64 {
        window == .tokensPerMinute ? tokens : requests
    }
}

/// Limit denials in order of precedence.
enum LimitDenial: Int, Comparable, CaseIterable, Sendable {
    case concurrency, rate, tokens, spendCap

    var reason: DenialReason {
        switch self {
        case .concurrency: .concurrencyLimited
        case .rate: .rateLimited
        case .tokens: .tokenRateLimited
        case .spendCap: .spendCapReached
        }
    }

    static func < (lhs: LimitDenial, rhs: LimitDenial) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// When a refused call could pass by waiting.
enum RetryAfter: Hashable, Sendable {
    case milliseconds(Int64)
    /// Waiting does not help.
    case never

    /// What holds when both must pass: the later, and never if either is never.
    func and(_ other: RetryAfter) -> RetryAfter {
        switch (self, other) {
        case (.milliseconds(let a), .milliseconds(let b)): .milliseconds(max(a, b))
        default: .never
        }
    }

    var milliseconds: Int64? {
        if case .milliseconds(let value) = self { return value }
        return nil
    }
}

/// One line of the limits report.
struct LimitRow: Hashable, Sendable, CustomStringConvertible {
    var scope: String
    var name: LimitName
    var limit: Int64
    var remaining: Int64
    var reset: Int64

    var description: String { "\(scope).\(name.displayName) \(remaining)/\(limit) reset \(reset)" }
}

/// The answer of the limits to a call.
struct LimitVerdict: Sendable {
    /// The first denial by precedence, and how long waiting takes for its kind to pass.
    var denial: (kind: LimitDenial, retry: RetryAfter)?
    /// Every limit as it stands after the call (reported when the call is allowed).
    var rowsAfter: [LimitRow] = []
    /// Every limit as it stands now (reported when the call is refused).
    var rowsNow: [LimitRow] = []
}

/// The order limits are reported in within a scope.
private let reportOrder: [LimitName] = [.concurrency, .rps, .rpm, .rph, .tpm, .hourlyCap, .dailyCap, .monthlyCap, .lifetimeCap]

/// Checks `need` against every limit of every scope, changing nothing.
func evaluateLimits(_ scopes: [ModelScope], _ need: LimitNeed, now: Int64, periods: ModelPeriods) -> LimitVerdict {
    var failures: [LimitDenial: RetryAfter] = [:]
    func fail(_ kind: LimitDenial, _ retry: RetryAfter) {
        failures[kind] = failures[kind].map { $0.and(retry) } ?? retry
    }
    var verdict = LimitVerdict()
    func report(_ scope: ModelScope, _ name: LimitName, _ limit: Int64,
                after: (remaining: Int64, reset: Int64), now current: (remaining: Int64, reset: Int64)) {
        let label = scope.label.rawValue
        verdict.rowsAfter.append(LimitRow(scope: label, name: name, limit: limit, remaining: max(0, after.remaining), reset: after.reset))
        verdict.rowsNow.append(LimitRow(scope: label, name: name, limit: limit, remaining: max(0, current.remaining), reset: current.reset))
    }

    for scope in scopes {
        for name in reportOrder {
            guard let limit = scope.limits[name] else { continue }
            switch name {
            case .concurrency:
                let after = scope.openHolds + need.holdSlots
                if need.holdSlots > 0 && after > limit { fail(.concurrency, .never) }
                report(scope, name, limit, after: (limit - after, 0), now: (limit - scope.openHolds, 0))

            case .rps, .rpm, .rph, .tpm:
                // In 128 bits: a call may bring any number of tokens.
                let window = RateWindow.allCases.first { $0.limit == name }!
                let (rate, period) = (Int128(limit), Int128(window.period))
                let units = Int128(need.units(window))
                let capacity = Int128(scope.burst(window, rate: limit)) * period
                let excess = Int128(scope.excess(window, now: now, rate: limit))
                let after = excess + units * period
                if units > 0 && after > capacity {
                    // Waiting drains the excess down to zero at best.
                    let retry: RetryAfter = units * period > capacity
                        ? .never : .milliseconds(Int64(ceilingDivision(after - capacity, rate)))
                    fail(window == .tokensPerMinute ? .tokens : .rate, retry)
                }
                report(scope, name, limit,
                       after: (Int64(clamping: floorDivision(capacity - after, period)), Int64(clamping: ceilingDivision(after, rate))),
                       now: (Int64(floorDivision(capacity - excess, period)), Int64(ceilingDivision(excess, rate))))

            case .hourlyCap, .dailyCap, .monthlyCap:
                let period = CapPeriod.allCases.first { $0.limit == name }!
                let used = scope.spend.spent(in: period, periods)
                let reset = period.end(periods) - now
                if need.spend > 0 && used + need.spend > limit {
                    // A new period starts from zero: waiting helps if the call alone fits.
                    fail(.spendCap, need.spend > limit ? .never : .milliseconds(reset))
                }
                report(scope, name, limit, after: (limit - used - need.spend, reset), now: (limit - used, reset))

            case .lifetimeCap:
                let used = scope.spend.lifetime
                if need.spend > 0 && used + need.spend > limit { fail(.spendCap, .never) }
                report(scope, name, limit, after: (limit - used - need.spend, 0), now: (limit - used, 0))

            case .burst:
                break
            }
        }
    }
    if let kind = failures.keys.min() {
        verdict.denial = (kind, failures[kind]!)
    }
    return verdict
}

extension ModelScope {
    /// Applies an allowed call: the rate windows it used, its spend, its open hold.
    mutating func consume(_ need: LimitNeed, now: Int64, periods: ModelPeriods) {
        for window in RateWindow.allCases {
            let units = need.units(window)
            guard units > 0, let rate = limits[window.limit] else { continue }
            rates[window] = GCRAState(at: now, excess: excess(window, now: now, rate: rate) + units * window.period)
        }
        if need.spend > 0 { spend.count(need.spend, periods) }
        openHolds += need.holdSlots
    }

    /// Adds tokens to the token rate (or gives them back, when negative) without a check: usage
    /// already delivered, or a reservation not used. The excess stays low enough that a call
    /// within the limit still adds up below 2^53 (and at least one full window is kept).
    mutating func adjustTokens(_ tokens: Int64, now: Int64) {
        guard tokens != 0, let rate = limits[.tpm] else { return }
        let window = RateWindow.tokensPerMinute
        let capacity = rate * window.period
        let most = max(capacity, maximumExact - capacity)
        let excess = Int128(excess(window, now: now, rate: rate)) + Int128(tokens) * Int128(window.period)
        rates[window] = GCRAState(at: now, excess: Int64(min(Int128(most), max(0, excess))))
    }

    /// A hold made through this scope closed.
    mutating func closeHold() {
        openHolds = max(0, openHolds - 1)
    }
}
