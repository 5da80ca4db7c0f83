import TollgateCore

// Engine types the model keeps, as plain carriers of values with no logic under test:
// AccountID, RequestID and KeyID (names), AccountStatus, CreditKind, DenialReason and LimitName
// (enumerations of names the engine and the model both answer in). Calendar, usage parsing,
// item names, the price lookup, money arithmetic and every rule are the model's own.

/// An account's figures as a decision reports them.
struct AccountFigures: Hashable, Sendable, CustomStringConvertible {
    var status: AccountStatus
    var balance: Int64
    var held: Int64
    var creditLimit: Int64
    /// The part of the balance that is promotional credit.
    var promotional: Int64

    var available: Int64 { balance - held }

    var description: String {
        "\(status.rawValue) balance \(balance) (promotional \(promotional)) held \(held) available \(available) credit_limit \(creditLimit)"
    }
}

/// A decision in plain values, as the model makes it and as the engine's `Decision` reads.
struct DecisionRecord: Hashable, Sendable, CustomStringConvertible {
    var allowed: Bool
    var reason: DenialReason?
    /// nil when no account was found (an unknown API key).
    var account: AccountFigures?
    /// What was applied: debited, credited, reserved, captured, released; the cost of an
    /// authorize or report; for a settle, all the hold charged in the end, net.
    var amount: Int64 = 0
    var holdSequence: Int64?
    var holdExpiresAt: Int64?
    /// After a capture, report, settle or release: all charged on the hold, net.
    var capturedOnHold: Int64?
    var replayed = false
    var retryAfter: Int64?
    var limits: [LimitRow] = []

    var description: String {
        var parts = [allowed ? "allowed" : "denied \(reason?.rawValue ?? "?")"]
        if let account { parts.append(account.description) } else { parts.append("no account") }
        parts.append("amount \(amount)")
        if let holdSequence { parts.append("hold \(holdSequence)") }
        if let holdExpiresAt { parts.append("expires \(holdExpiresAt)") }
        if let capturedOnHold { parts.append("on hold \(capturedOnHold)") }
        if replayed { parts.append("replayed") }
        if let retryAfter { parts.append("retry \(retryAfter)") }
        if !limits.isEmpty { parts.append("limits [\(limits.map(\.description).joined(separator: ", "))]") }
        return parts.joined(separator: "; ")
    }
}

/// What a request id was first used for: a retry must be the same operation to be answered
/// with the first result (I3).
enum ModelOperation: Hashable, Sendable {
    struct Usage: Hashable, Sendable {
        var name: String
        var quantity: Int64
    }

    case credit(CreditKind, Int64, expires: Int64?)
    case debit(Int64)
    case hold(amount: Int64, ttl: Int64)
    case capture(hold: Int64, amount: Int64)
    case release(hold: Int64)
    case authorize(hold: Bool, ttl: Int64, key: String?, usage: [Usage])
    case report(hold: Int64, usage: [Usage])
    /// usage nil: settle on what was reported.
    case settle(hold: Int64, usage: [Usage]?)

    static func usageList(_ items: [ModelUsageItem]) -> [Usage] {
        items.map { Usage(name: $0.name, quantity: $0.quantity) }
    }
}

/// Failures the model predicts as errors rather than decisions.
enum ModelError: Error, Hashable, Sendable {
    /// The request id was used for a different operation.
    case idempotencyConflict
    /// Refused outright with this error code (invalid_argument, account_closed).
    case refused(String)
}

/// An open hold.
struct ModelHold: Sendable {
    struct Reported: Sendable {
        var meter: String
        var model: String?
        var quantity: Int64
        var price: ModelPrice
        /// The micro-credits its reports actually charged (at whatever price was current):
        /// a refund of it at settle never exceeds this.
        var charged: Int64 = 0
    }

    let sequence: Int64
    let requestID: String
    let expiresAt: Int64
    /// Made by authorize: it counts on the limits of the account and of its key.
    let countsOnLimits: Bool
    /// The API key it was made through.
    let key: String?
    /// The estimate reserved.
    var reserved: Int64
    /// Charged against it so far (reports, captures, settle), before refunds.
    var charged: Int64 = 0
    /// Charged less refunded.
    var net: Int64 = 0
    var tokensReserved: Int64
    var tokensUsed: Int64 = 0
    /// What reports charged, by item name: quantity, the price of the first report, and the
    /// micro-credits actually charged.
    var reported: [String: Reported] = [:]
    /// Spend it counted, per current period.
    var spend = HoldSpend()
    /// Promotional credit its charges used (refunds give that much back as promotional credit)
    /// and the latest expiry it came from.
    var promotionalUsed: Int64 = 0
    var promotionalLatestExpiry: Int64 = 0

    /// What it still reserves: charges use up the reservation first.
    var remaining: Int64 { max(0, reserved - charged) }
}

/// An API key of an account.
struct ModelKey: Sendable {
    var revoked = false
    var scope = ModelScope(.key)
}

/// An account with everything the engine keeps for it.
struct ModelAccount: Sendable {
    var status: AccountStatus = .active
    var balance: Int64 = 0
    var held: Int64 = 0
    /// The promotional part of the balance, by expiry.
    var promotional = PromotionalCredit()
    let creditLimit: Int64
    var scope = ModelScope(.account)
    var keys: [String: ModelKey] = [:]
    var holds: [Int64: ModelHold] = [:]
    var lastHoldSequence: Int64 = 0
    var carries = Carries()
    /// Micro-credits, by item name, that settle refunds kept back because they would have given
    /// back more than the hold charged for the item. With one price throughout this is the
    /// carry's rounding (at most 1 per refund): the ledger's total for the item then exceeds
    /// ⌊quantity × price⌋ by exactly this.
    var refundsKept: [String: Int64] = [:]
    /// How many holds expired by the clock, and expiry moments of promotional credit passed
    /// (for the tests' coverage counts).
    var expiredHolds = 0
    var grantsExpired = 0
    /// Every ledger entry the model expects, oldest first.
    var ledger: [ModelEntry] = []
    /// Request ids of allowed mutations: the operation and its first answer.
    var remembered: [String: (operation: ModelOperation, answer: DecisionRecord)] = [:]

    init(creditLimit: Int64) { self.creditLimit = creditLimit }

    var available: Int64 { balance - held }

    var figures: AccountFigures {
        AccountFigures(status: status, balance: balance, held: held, creditLimit: creditLimit, promotional: promotional.total)
    }

    /// Whether spending `amount` more keeps available credit within the credit limit (I1).
    func covers(_ amount: Int64) -> Bool {
        available - amount >= -creditLimit
    }

    /// The limit scopes of a call: the account's, and the key's when made through one.
    func scopes(key: String?) -> [ModelScope] {
        [scope] + (key.flatMap { keys[$0]?.scope }.map { [$0] } ?? [])
    }

    /// Changes each limit scope of a call in place.
    mutating func updateScopes(key: String?, _ change: (inout ModelScope) -> Void) {
        change(&scope)
        if let key, keys[key] != nil { change(&keys[key]!.scope) }
    }

    func denied(_ reason: DenialReason, retry: RetryAfter? = nil, limits: [LimitRow] = []) -> DecisionRecord {
        DecisionRecord(allowed: false, reason: reason, account: figures, retryAfter: retry?.milliseconds, limits: limits)
    }

    func allowed(amount: Int64 = 0) -> DecisionRecord {
        DecisionRecord(allowed: true, reason: nil, account: figures, amount: amount)
    }
}
