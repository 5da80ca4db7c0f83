/// A limit that can be set on an account or an API key.
public enum LimitName: String, Sendable, Hashable, CaseIterable, Codable {
    /// Requests per second, minute, hour (GCRA; burst defaults to the limit).
    case rps, rpm, rph
    /// How many requests each request-rate limit admits at once.
    case burst
    /// Tokens per minute, weighted by each call's token quantities.
    case tpm
    /// Open holds at once.
    case concurrency = "conc"
    /// Spend per UTC hour, day, month, and in all (micro-credits).
    case hourlyCap = "cap_h", dailyCap = "cap_d", monthlyCap = "cap_m", lifetimeCap = "cap_life"

    /// Whether the value is an amount of credit (the caps) rather than a count.
    public var isAmount: Bool {
        switch self {
        case .hourlyCap, .dailyCap, .monthlyCap, .lifetimeCap: return true
        default: return false
        }
    }

    /// The name in JSON and in the limits report (`rpm`, `concurrency`, `daily_cap`...).
    public var displayName: String {
        switch self {
        case .concurrency: return "concurrency"
        case .hourlyCap: return "hourly_cap"
        case .dailyCap: return "daily_cap"
        case .monthlyCap: return "monthly_cap"
        case .lifetimeCap: return "lifetime_cap"
        default: return rawValue
        }
    }

    /// The largest count a rate or concurrency limit may have: burst × an hour in ms stays
    /// below 2^53, so Lua's doubles stay exact.
    public static let maximumCount: Int64 = 1_000_000_000
}

/// A change to limits: each named limit is set to a value or removed; others stay as they are.
public struct LimitsUpdate: Sendable, Hashable {
    /// nil removes the limit.
    public private(set) var changes: [LimitName: Int64?] = [:]

    public init() {}

    /// The changes `limits set` and `PUT .../limits` name: a count of 0 or a cap of "0"
    /// removes that limit, nil leaves it as it is.
    public init(counts: [LimitName: Int64?], caps: [LimitName: String?]) throws(TollgateError) {
        for case let (name, value?) in counts {
            if value == 0 { remove(name) } else { try set(name, count: value) }
        }
        for case let (name, value?) in caps {
            let amount = try Money(parsing: value)
            if amount == .zero { remove(name) } else { try set(name, amount: amount) }
        }
    }

    /// Sets a count limit (rates, burst, concurrency): 1 to `LimitName.maximumCount` (10^9).
    public mutating func set(_ name: LimitName, count: Int64) throws(TollgateError) {
        guard !name.isAmount else { throw TollgateError(.invalidArgument, "\(name.displayName) is an amount of credit") }
        guard (1...LimitName.maximumCount).contains(count) else {
            throw TollgateError(.invalidArgument, "\(name.displayName) must be between 1 and \(LimitName.maximumCount)")
        }
        changes[name] = .some(count)
    }

    /// Sets a spend cap.
    public mutating func set(_ name: LimitName, amount: Money) throws(TollgateError) {
        guard name.isAmount else { throw TollgateError(.invalidArgument, "\(name.displayName) is a count, not an amount") }
        guard amount.micros >= 0 else { throw TollgateError(.invalidAmount, "a spend cap must not be negative") }
        changes[name] = .some(amount.micros)
    }

    /// Removes a limit.
    public mutating func remove(_ name: LimitName) {
        changes[name] = .some(nil)
    }

    public var isEmpty: Bool { changes.isEmpty }
}

/// One limit that applied to a decision, and what it still allows.
public struct LimitStatus: Sendable, Hashable {
    /// `account` or `key`.
    public var scope: String
    public var name: LimitName
    /// The configured limit (micro-credits for caps).
    public var limit: Int64
    /// What is left after this decision (requests, tokens, open holds, or micro-credits).
    public var remaining: Int64
    /// Milliseconds until the allowance is whole again (rates) or the period ends (caps);
    /// 0 where it does not apply.
    public var resetMilliseconds: Int64

    /// `account.rpm`, `key.daily_cap`...
    public var qualifiedName: String { "\(scope).\(name.displayName)" }
}

/// Whom a scope of limits belongs to.
public enum LimitScope: Sendable, Hashable {
    case account(AccountID)
    case key(KeyID)
}
