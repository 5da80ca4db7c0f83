import Synchronization
import TollgateCore
import TollgateRedis

/// The debit workload shared by the `EngineBenchmarks` suite and the `DebitLoad` tool:
/// `concurrency` tasks debiting one account through one in-process `Engine`, every debit
/// with a request id of its own, so each one runs the whole debit Lua (never a replay).
public struct DebitWorkload: Sendable {
    /// The account every debit draws on.
    public let account: AccountID
    /// The amount of each debit.
    public let amount: Money
    /// The engine under test.
    public let engine: Engine
    /// Makes request ids unique within this workload; `prefix` makes them unique across
    /// workloads and runs on the same server.
    private let sequence: Sequence
    /// What each call does.
    public let operation: Operation

    /// A plain debit of `amount`, or a gateway authorize by API key with every limit kind on
    /// (request rates, token rate, concurrency, caps; all far above what a run can reach)
    /// for `api_call=1,tokens.input=1000`.
    public enum Operation: Sendable {
        case debit
        case authorize(secret: String)
    }

    /// The usage every authorize charges.
    public static let authorizeUsage: [UsageItem] = (try? UsageItem.parseList("api_call=1,tokens.input=1000")) ?? []

    /// What a run did.
    public struct Outcome: Sendable {
        /// Debits applied.
        public var allowed = 0
        /// Debits refused (none are expected: the account's balance covers them all).
        public var denied = 0
        /// Debits that failed with an error.
        public var failed = 0
        /// The first error, if any, for the report.
        public var firstError: String?
        /// Wall-clock time of the measured part.
        public var elapsed: Duration = .zero

        public var total: Int { allowed + denied + failed }

        mutating func add(_ other: Outcome) {
            allowed += other.allowed
            denied += other.denied
            failed += other.failed
            if firstError == nil { firstError = other.firstError }
        }
    }

    private final class Sequence: Sendable {
        let prefix: String
        let next = Atomic<Int>(0)
        init(prefix: String) { self.prefix = prefix }
    }

    /// The balance a workload account is topped up to when it holds less than half of it:
    /// 9e15 micro-credits (9 billion credits, just under Lua's exact 2^53), enough for
    /// billions of 1-micro-credit debits, so no debit is ever refused.
    public static let fundedBalance = Money(micros: 9_000_000_000_000_000)!

    /// Makes sure `account` exists and holds at least half of `fundedBalance`.
    /// - Parameter requestIDPrefix: makes this workload's request ids unique on the server
    ///   (include something unique per run, such as the process id and the time).
    public static func prepare(
        engine: Engine,
        account: AccountID,
        amount: Money = Money(micros: 1)!,
        requestIDPrefix: String,
        authorize: Bool = false
    ) async throws(TollgateError) -> DebitWorkload {
        let state: AccountState
        do {
            state = try await engine.createAccount(account)
        } catch where error.code == .accountExists {
            state = try await engine.account(account)
        }
        if state.balance.micros < fundedBalance.micros / 2 {
            let topUp = Money(micros: fundedBalance.micros - state.balance.micros)!
            _ = try await engine.credit(
                account, amount: topUp, kind: .grant,
                requestID: try RequestID("\(requestIDPrefix)-fund"))
        }
        var operation = Operation.debit
        if authorize {
            try await engine.setPrice(try PriceKey(meter: "api_call"), try Price(price: Money(micros: 1)!, per: 1))
            try await engine.setPrice(try PriceKey(meter: "tokens.input"), try Price(price: Money(micros: 150_000)!, per: 1_000_000))
            let key = try await engine.createKey(for: account)
            let huge = LimitName.maximumCount
            let cap = Money.maximum
            var limits = LimitsUpdate()
            for name in [LimitName.rps, .rpm, .rph, .burst, .tpm] { try limits.set(name, count: huge) }
            try limits.set(.concurrency, count: 1000)
            for name in [LimitName.hourlyCap, .dailyCap, .monthlyCap, .lifetimeCap] { try limits.set(name, amount: cap) }
            try await engine.setLimits(.account(account), limits)
            var keyLimits = LimitsUpdate()
            for name in [LimitName.rps, .rpm, .rph, .tpm] { try keyLimits.set(name, count: huge) }
            try await engine.setLimits(.key(key.keyID), keyLimits)
            operation = .authorize(secret: key.secret)
        }
        return DebitWorkload(account: account, amount: amount, engine: engine, sequence: Sequence(prefix: requestIDPrefix), operation: operation)
    }

    /// Runs `count` debits split over `concurrency` concurrent tasks and returns what happened.
    public func run(debits count: Int, concurrency: Int) async -> Outcome {
        let start = ContinuousClock.now
        var outcome = await withTaskGroup(of: Outcome.self, returning: Outcome.self) { group in
            for caller in 0..<concurrency {
                // Spread the remainder so the tasks together do exactly `count` debits.
                let share = count / concurrency + (caller < count % concurrency ? 1 : 0)
                group.addTask { await self.debitLoop { done in done < share } }
            }
            var total = Outcome()
            for await part in group { total.add(part) }
            return total
        }
        outcome.elapsed = start.duration(to: .now)
        return outcome
    }

    /// Runs `concurrency` tasks, each debiting back to back until `duration` has passed.
    public func run(for duration: Duration, concurrency: Int) async -> Outcome {
        let start = ContinuousClock.now
        let deadline = start + duration
        var outcome = await withTaskGroup(of: Outcome.self, returning: Outcome.self) { group in
            for _ in 0..<concurrency {
                group.addTask { await self.debitLoop { _ in ContinuousClock.now < deadline } }
            }
            var total = Outcome()
            for await part in group { total.add(part) }
            return total
        }
        outcome.elapsed = start.duration(to: .now)
        return outcome
    }

    /// One caller: debits while `more(debitsSoFar)` says so.
    private func debitLoop(while more: (Int) -> Bool) async -> Outcome {
        var outcome = Outcome()
        var done = 0
        while more(done) {
            done += 1
            let number = sequence.next.add(1, ordering: .relaxed).newValue
            do {
                let decision = try await call(requestID: try RequestID(sequence.prefix + "-" + String(number)))
                if decision.allowed {
                    outcome.allowed += 1
                } else {
                    outcome.denied += 1
                    if outcome.firstError == nil { outcome.firstError = "denied: \(decision.reason?.rawValue ?? "?")" }
                }
            } catch {
                outcome.failed += 1
                if outcome.firstError == nil { outcome.firstError = error.description }
            }
        }
        return outcome
    }

    /// One call of the workload's operation.
    public func call(requestID: RequestID) async throws(TollgateError) -> Decision {
        switch operation {
        case .debit:
            return try await engine.debit(account, amount: amount, requestID: requestID)
        case .authorize(let secret):
            return try await engine.authorize(.key(secret: secret), usage: Self.authorizeUsage, requestID: requestID)
        }
    }
}
