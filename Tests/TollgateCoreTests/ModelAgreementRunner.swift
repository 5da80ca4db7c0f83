import Foundation
@testable import TollgateCore
import TollgateRedis
import TollgateTestSupport

/// An API key as the test knows it: the id and the secret shown once.
struct KnownKey: Sendable {
    var account: AccountID
    var id: KeyID
    var secret: String
}

/// One step of a sequence, run against both the engine and the model.
indirect enum Step: Sendable, CustomStringConvertible {
    enum Target: Sendable {
        case key(KnownKey)
        case unknownKey(String)
        case account(AccountID)
    }

    // Usage travels as text (`METER[@MODEL]=QTY,...`): the engine reads it with its parser, the
    // model with its own. A settle's "" is a final usage of nothing.
    case authorize(Target, String, RequestID, holdTTL: Int64?)
    case report(AccountID, hold: Int64, String, RequestID)
    case settle(AccountID, hold: Int64, String?, RequestID)
    case release(AccountID, hold: Int64, RequestID)
    case capture(AccountID, hold: Int64, amount: Int64, RequestID)
    case hold(AccountID, amount: Int64, ttl: Int64, RequestID)
    /// A grant may expire (ms since the epoch).
    case credit(AccountID, amount: Int64, CreditKind, expires: Int64?, RequestID)
    case debit(AccountID, amount: Int64, RequestID)
    case setStatus(AccountID, AccountStatus)
    /// Closes an account. The engine has no call for it; the harness writes the status.
    case close(AccountID)
    case readAccount(AccountID)
    case advance(milliseconds: Int64)
    case setLimits(AccountID, key: KnownKey?, [LimitName: Int64?])
    case revoke(KnownKey)
    /// Sets a price of a meter (for one model, or for any), or removes it (nil).
    case setPrice(meter: String, model: String?, ModelPrice?)
    /// The same step again (a retry with the same request id).
    case replay(Step)

    /// The account the step's request id belongs to, and the id, for steps that have one.
    var requestKey: (account: AccountID, request: RequestID)? {
        switch self {
        case .authorize(let target, _, let request, _):
            switch target {
            case .key(let key): return (key.account, request)
            case .account(let id): return (id, request)
            case .unknownKey: return nil
            }
        case .report(let id, _, _, let request), .settle(let id, _, _, let request), .release(let id, _, let request),
             .capture(let id, _, _, let request), .hold(let id, _, _, let request), .credit(let id, _, _, _, let request),
             .debit(let id, _, let request):
            return (id, request)
        case .replay(let step):
            return step.requestKey
        default:
            return nil
        }
    }

    /// The account whose ledger the step may write to.
    var account: AccountID? {
        switch self {
        case .setStatus(let id, _), .close(let id), .readAccount(let id): return id
        default: return requestKey?.account
        }
    }

    /// The kind of step, for coverage counts.
    var kind: String {
        switch self {
        case .authorize(let target, _, _, let ttl):
            let by: String
            switch target {
            case .key: by = "key"
            case .unknownKey: by = "unknown key"
            case .account: by = "account"
            }
            return "authorize by \(by) \(ttl == nil ? "debit" : "hold")"
        case .report: return "report"
        case .settle(_, _, let usage, _): return usage == nil ? "settle on reported" : "settle with usage"
        case .release: return "release"
        case .capture: return "capture"
        case .hold: return "hold"
        case .credit(_, let amount, let kind, let expires, _):
            return amount < 0 ? "credit negative \(kind.rawValue)" : "credit \(kind.rawValue)\(expires == nil ? "" : " expiring")"
        case .debit: return "debit"
        case .setStatus(_, let status): return "set \(status.rawValue)"
        case .close: return "close"
        case .readAccount: return "read"
        case .advance: return "advance"
        case .setLimits: return "limits"
        case .revoke: return "revoke"
        case .setPrice(_, _, let price): return price == nil ? "remove price" : "set price"
        case .replay(let step): return "replay \(step.kind)"
        }
    }

    var description: String {
        func usage(_ text: String) -> String { text.isEmpty ? "(none)" : text }
        switch self {
        case .authorize(let target, let items, let request, let ttl):
            let who: String
            switch target {
            case .key(let key): who = "key \(key.id) of \(key.account)"
            case .unknownKey: who = "unknown key"
            case .account(let id): who = "account \(id)"
            }
            return "authorize \(who) \(usage(items)) \(ttl.map { "hold ttl \($0)" } ?? "debit") [\(request)]"
        case .report(let id, let hold, let items, let request): return "report \(id) h\(hold) \(usage(items)) [\(request)]"
        case .settle(let id, let hold, let items, let request):
            return "settle \(id) h\(hold) \(items.map(usage) ?? "on reported") [\(request)]"
        case .release(let id, let hold, let request): return "release \(id) h\(hold) [\(request)]"
        case .capture(let id, let hold, let amount, let request): return "capture \(id) h\(hold) \(amount) [\(request)]"
        case .hold(let id, let amount, let ttl, let request): return "hold \(id) \(amount) ttl \(ttl) [\(request)]"
        case .credit(let id, let amount, let kind, let expires, let request):
            return "credit \(id) \(kind.rawValue) \(amount)\(expires.map { " expiring \($0)" } ?? "") [\(request)]"
        case .debit(let id, let amount, let request): return "debit \(id) \(amount) [\(request)]"
        case .setStatus(let id, let status): return "set \(id) \(status.rawValue)"
        case .close(let id): return "close \(id)"
        case .readAccount(let id): return "read \(id)"
        case .advance(let ms): return "advance \(ms) ms"
        case .setLimits(let id, let key, let changes):
            let list = changes.sorted { $0.key.rawValue < $1.key.rawValue }
                .map { "\($0.key.rawValue)=\($0.value.map(String.init) ?? "none")" }.joined(separator: ",")
            return "limits \(key.map { "key \($0.id)" } ?? "account \(id)") \(list)"
        case .revoke(let key): return "revoke \(key.id) of \(key.account)"
        case .setPrice(let meter, let model, let price):
            return "price \(modelItemName(meter, model)) \(price.map(\.description) ?? "removed")"
        case .replay(let step): return "replay: \(step)"
        }
    }
}

/// What a step answered.
enum Observation: Hashable, Sendable, CustomStringConvertible {
    case decision(DecisionRecord)
    case account(AccountFigures)
    case error(String)
    case done

    var description: String {
        switch self {
        case .decision(let decision): return decision.description
        case .account(let figures): return figures.description
        case .error(let code): return "error \(code)"
        case .done: return "done"
        }
    }

    /// The kind of answer, for coverage counts.
    var kind: String {
        switch self {
        case .decision(let decision):
            let outcome = decision.allowed ? "allowed" : decision.reason?.rawValue ?? "denied"
            return decision.replayed ? outcome + " (replayed)" : outcome
        case .account(let figures): return figures.status.rawValue
        case .error(let code): return "error " + code
        case .done: return "done"
        }
    }

    var figures: AccountFigures? {
        switch self {
        case .decision(let decision): return decision.account
        case .account(let figures): return figures
        default: return nil
        }
    }

    var decision: DecisionRecord? {
        if case .decision(let decision) = self { return decision }
        return nil
    }
}

extension DecisionRecord {
    /// The engine's decision in plain values.
    init(_ decision: Decision) {
        self.init(
            allowed: decision.allowed,
            reason: decision.reason,
            account: decision.account.map(AccountFigures.init),
            amount: decision.amount.micros,
            holdSequence: decision.holdID?.sequence,
            holdExpiresAt: decision.holdExpiresAt,
            capturedOnHold: decision.capturedOnHold?.micros,
            replayed: decision.replayed,
            retryAfter: decision.retryAfterMilliseconds,
            limits: decision.limits.map {
                LimitRow(scope: $0.scope, name: $0.name, limit: $0.limit, remaining: $0.remaining, reset: $0.resetMilliseconds)
            })
    }

    /// The fields in which two decisions differ, for a report.
    func differences(from other: DecisionRecord) -> [String] {
        var out: [String] = []
        func check<T: Equatable>(_ name: String, _ a: T, _ b: T) {
            if a != b { out.append("\(name): engine \(a) ≠ model \(b)") }
        }
        check("allowed", allowed, other.allowed)
        check("reason", reason?.rawValue, other.reason?.rawValue)
        check("balance", account?.balance, other.account?.balance)
        check("held", account?.held, other.account?.held)
        check("available", account?.available, other.account?.available)
        check("status", account?.status, other.account?.status)
        check("promotional", account?.promotional, other.account?.promotional)
        check("amount", amount, other.amount)
        check("hold", holdSequence, other.holdSequence)
        check("hold expiry", holdExpiresAt, other.holdExpiresAt)
        check("on hold", capturedOnHold, other.capturedOnHold)
        check("replayed", replayed, other.replayed)
        check("retry_after_ms", retryAfter, other.retryAfter)
        if limits != other.limits {
            out.append("limits: engine [\(limits.map(\.description).joined(separator: ", "))] ≠ model [\(other.limits.map(\.description).joined(separator: ", "))]")
        }
        return out
    }
}

/// The first step on which the engine and the model disagreed.
struct Divergence: Error, CustomStringConvertible {
    var seed: UInt64
    var index: Int
    var step: String
    var engine: String
    var model: String
    var differences: [String]
    var history: [String]

    var description: String {
        """
        The Lua engine and the reference model disagree at step #\(index) of the sequence with seed \
        \(seed) (rerun it alone: TOLLGATE_MODEL_SEED=\(seed) swift test --filter ModelAgreement).
          step:   \(step)
          engine: \(engine)
          model:  \(model)
          \(differences.joined(separator: "\n  "))
        the steps before it (step → engine's answer):
          \(history.joined(separator: "\n  "))
        """
    }
}

extension AccountFigures {
    init(_ state: AccountState) {
        self.init(status: state.status, balance: state.balance.micros, held: state.held.micros,
                  creditLimit: state.creditLimit.micros, promotional: state.promotional.micros)
    }
}

extension ModelEntry {
    /// An entry the engine wrote, in the model's terms.
    init(_ entry: LedgerEntry) {
        let grantExpiry = entry.kind == .expire && entry.holdID == nil
        self.init(
            kind: entry.kind.rawValue, amount: entry.amount.micros, balance: entry.balance.micros, held: entry.held.micros,
            heldDelta: entry.heldDelta.micros, time: entry.time,
            // An expiry of promotional credit is named by its grant, which the model does not number.
            requestID: grantExpiry ? nil : entry.requestID, hold: entry.holdID?.sequence,
            usage: entry.meter.map { .init(meter: $0, model: entry.model, quantity: entry.quantity ?? 0, key: entry.keyID) },
            grantExpiry: grantExpiry, expires: entry.kind == .grant ? entry.expiresAt : nil)
    }
}

/// A real engine and the model, driven by the same steps; stops at the first disagreement.
/// After every step it also compares the ledger entries the step wrote on the account it
/// touched (every account at each read-back and at the end).
struct AgreementHarness {
    let fixture: EngineFixture
    var model: ReferenceModel
    let seed: UInt64
    private(set) var history: [String] = []
    private(set) var stepCount = 0
    /// How often each kind of step got each answer ("authorize hold → rate_limited").
    private(set) var coverage: [String: Int] = [:]
    private var expiredSoFar = 0
    private var grantsExpiredSoFar = 0
    private var lastPeriods: ModelPeriods
    /// The newest engine entry compared so far, and how many model entries, per account.
    private var engineSeen: [AccountID: String] = [:]
    private var modelSeen: [AccountID: Int] = [:]
    /// The entries the last step wrote, as the engine wrote them (all accounts checked).
    private(set) var lastEntries: [ModelEntry] = []

    init(seed: UInt64, start: Int64) async throws {
        fixture = try await EngineFixture()
        fixture.clock.set(milliseconds: start)
        model = ReferenceModel(now: start)
        lastPeriods = ModelPeriods(milliseconds: start)
        self.seed = seed
    }

    var engine: Engine { fixture.engine }

    /// How many earlier steps a report shows (TOLLGATE_MODEL_HISTORY, default 30).
    static let historyShown = ProcessInfo.processInfo.environment["TOLLGATE_MODEL_HISTORY"].flatMap { Int($0) } ?? 30

    // MARK: Setup, mirrored in both

    mutating func createAccount(_ id: AccountID, creditLimit: Int64) async throws {
        _ = try await engine.createAccount(id, creditLimit: Money(micros: creditLimit)!)
        model.createAccount(id, creditLimit: creditLimit)
    }

    mutating func createKey(for id: AccountID) async throws -> KnownKey {
        let created = try await engine.createKey(for: id)
        model.addKey(created.keyID.rawValue, secret: created.secret, to: id)
        return KnownKey(account: id, id: created.keyID, secret: created.secret)
    }

    mutating func setPrice(meter: String, model itemModel: String? = nil, micros: Int64, per: Int64) async throws {
        try await engine.setPrice(PriceKey(meter: meter, model: itemModel), Price(price: Money(micros: micros)!, per: per))
        model.setPrice(meter: meter, model: itemModel, ModelPrice(micros: micros, per: per))
    }

    // MARK: Steps

    private func divergence(_ step: String, engine: String, model: String, _ differences: [String]) -> Divergence {
        Divergence(seed: seed, index: stepCount, step: step, engine: engine, model: model, differences: differences,
                   history: history.suffix(Self.historyShown))
    }

    /// Runs a step on both sides and compares; throws the divergence when they disagree.
    @discardableResult
    mutating func run(_ step: Step) async throws(Divergence) -> Observation {
        stepCount += 1
        let engineAnswer = await runOnEngine(step)
        let modelAnswer = runOnModel(step)
        // I1 holds on every answer, whatever the model says.
        if let figures = engineAnswer.figures, figures.available < -figures.creditLimit || figures.held < 0 {
            throw divergence(step.description, engine: engineAnswer.description, model: modelAnswer.description,
                             ["I1: available below −credit limit, or held negative"])
        }
        if engineAnswer != modelAnswer {
            var differences: [String] = []
            if let a = engineAnswer.decision, let b = modelAnswer.decision { differences = a.differences(from: b) }
            throw divergence(step.description, engine: engineAnswer.description, model: modelAnswer.description, differences)
        }
        // The ledger: what this step wrote, entry by entry.
        lastEntries = []
        let sweep = step.account.map { [$0] } ?? []
        try await compareLedgers(sweep, step: step.description, answer: engineAnswer.description)

        history.append("#\(stepCount) \(step) → \(engineAnswer)")
        coverage["\(step.kind) → \(engineAnswer.kind)", default: 0] += 1
        for entry in lastEntries {
            coverage["(ledger: \(entry.grantExpiry ? "expire of promotional credit" : entry.kind))", default: 0] += 1
        }
        let expired = model.accounts.values.reduce(0) { $0 + $1.expiredHolds }
        if expired > expiredSoFar { coverage["(holds expired by the clock)", default: 0] += expired - expiredSoFar }
        expiredSoFar = expired
        let grantsExpired = model.accounts.values.reduce(0) { $0 + $1.grantsExpired }
        if grantsExpired > grantsExpiredSoFar { coverage["(promotional credit expired)", default: 0] += grantsExpired - grantsExpiredSoFar }
        grantsExpiredSoFar = grantsExpired
        let periods = model.periods
        if periods.hourStart != lastPeriods.hourStart { coverage["(clock crossed an hour)", default: 0] += 1 }
        if periods.dayStart != lastPeriods.dayStart { coverage["(clock crossed a day)", default: 0] += 1 }
        if periods.monthStart != lastPeriods.monthStart { coverage["(clock crossed a month)", default: 0] += 1 }
        lastPeriods = periods
        return engineAnswer
    }

    /// Compares the entries written since the last comparison on each account: the engine's,
    /// read back through its ledger API, and the model's.
    mutating func compareLedgers(_ accounts: [AccountID], step: String, answer: String) async throws(Divergence) {
        for id in accounts where model.accounts[id] != nil {
            let written: [LedgerEntry]
            do {
                written = try await entries(of: id, after: engineSeen[id])
            } catch {
                throw divergence(step, engine: "the ledger of \(id) could not be read: \(error)", model: answer, [])
            }
            let engineEntries = written.map(ModelEntry.init)
            let expected = Array(model.accounts[id]!.ledger.dropFirst(modelSeen[id, default: 0]))
            var differences = ledgerDifferences(engine: engineEntries, model: expected) ?? []
            for entry in written where entry.kind == .grant || (entry.kind == .expire && entry.holdID == nil) {
                if entry.reference?.hasPrefix("grant:") != true {
                    differences.append("entry \(entry.id) (\(entry.kind.rawValue)) names no grant: reference \(entry.reference ?? "none")")
                }
            }
            if !differences.isEmpty {
                throw divergence(step, engine: answer, model: answer, ["on the ledger of \(id):"] + differences)
            }
            if let newest = written.last { engineSeen[id] = newest.id }
            modelSeen[id] = model.accounts[id]!.ledger.count
            lastEntries += engineEntries
        }
    }

    /// The account's entries after `after` (all when nil), oldest first, read newest first a
    /// page at a time until the last one seen.
    private func entries(of id: AccountID, after: String?) async throws -> [LedgerEntry] {
        var collected: [LedgerEntry] = []
        var cursor: String?
        pages: while true {
            let page = try await engine.ledger(id, limit: 20, cursor: cursor)
            for entry in page.entries {
                if entry.id == after { break pages }
                collected.append(entry)
            }
            guard let next = page.nextCursor else { break }
            cursor = next
        }
        return collected.reversed()
    }

    private func engineUsage(_ text: String, allowEmpty: Bool = false) throws -> [UsageItem] {
        allowEmpty && text.isEmpty ? [] : try UsageItem.parseList(text)
    }

    private func runOnEngine(_ step: Step) async -> Observation {
        do {
            switch step {
            case .authorize(let target, let usage, let request, let ttl):
                let engineTarget: AuthorizeTarget
                switch target {
                case .key(let key): engineTarget = .key(secret: key.secret)
                case .unknownKey(let secret): engineTarget = .key(secret: secret)
                case .account(let id): engineTarget = .account(id)
                }
                return try await checked(engine.authorize(
                    engineTarget, usage: engineUsage(usage), requestID: request, mode: ttl.map { .hold(ttl: .milliseconds($0)) } ?? .debit))
            case .report(let id, let hold, let usage, let request):
                return try await checked(engine.report(HoldID(account: id, sequence: hold), usage: engineUsage(usage), requestID: request))
            case .settle(let id, let hold, let usage, let request):
                return try await checked(engine.settle(HoldID(account: id, sequence: hold),
                                                       usage: usage.map { try engineUsage($0, allowEmpty: true) }, requestID: request))
            case .release(let id, let hold, let request):
                return try await checked(engine.release(HoldID(account: id, sequence: hold), requestID: request))
            case .capture(let id, let hold, let amount, let request):
                return try await checked(engine.capture(HoldID(account: id, sequence: hold), amount: Money(micros: amount)!, requestID: request))
            case .hold(let id, let amount, let ttl, let request):
                return try await checked(engine.hold(id, amount: Money(micros: amount)!, ttl: .milliseconds(ttl), requestID: request))
            case .credit(let id, let amount, let kind, let expires, let request):
                return try await checked(engine.credit(id, amount: Money(micros: amount)!, kind: kind, expires: expires, requestID: request))
            case .debit(let id, let amount, let request):
                return try await checked(engine.debit(id, amount: Money(micros: amount)!, requestID: request))
            case .setStatus(let id, let status):
                return .account(AccountFigures(status == .frozen ? try await engine.freeze(id) : try await engine.unfreeze(id)))
            case .close(let id):
                // No engine call closes an account: an operator's direct write of the status.
                _ = try await engine.redis.send(RedisCommand(["HSET", AccountKeys(id).account, "status", AccountStatus.closed.rawValue]))
                return .done
            case .readAccount(let id):
                return .account(AccountFigures(try await engine.account(id)))
            case .advance(let milliseconds):
                fixture.clock.advance(by: .milliseconds(milliseconds))
                return .done
            case .setLimits(let id, let key, let changes):
                var update = LimitsUpdate()
                for (name, value) in changes {
                    if let value {
                        if name.isAmount { try update.set(name, amount: Money(micros: value)!) } else { try update.set(name, count: value) }
                    } else {
                        update.remove(name)
                    }
                }
                try await engine.setLimits(key.map { .key($0.id) } ?? .account(id), update)
                return .done
            case .revoke(let key):
                try await engine.revokeKey(key.id)
                return .done
            case .setPrice(let meter, let model, let price):
                let key = try PriceKey(meter: meter, model: model)
                if let price {
                    try await engine.setPrice(key, Price(price: Money(micros: price.micros)!, per: price.per))
                } else {
                    _ = try await engine.removePrice(key)
                }
                return .done
            case .replay(let step):
                return await runOnEngine(step)
            }
        } catch let error as TollgateError {
            return .error(error.code.rawValue)
        } catch {
            return .error("\(error)")
        }
    }

    /// The decision, checked for the one figure the engine derives itself.
    private func checked(_ decision: Decision) -> Observation {
        let record = DecisionRecord(decision)
        if let account = record.account, decision.available?.micros != account.available {
            return .error("available \(String(describing: decision.available)) is not balance − held")
        }
        return .decision(record)
    }

    private mutating func runOnModel(_ step: Step) -> Observation {
        do throws(ModelError) {
            func usage(_ text: String, allowEmpty: Bool = false) throws(ModelError) -> [ModelUsageItem] {
                guard let items = parseModelUsage(text, allowEmpty: allowEmpty) else { throw .refused("invalid_argument") }
                return items
            }
            switch step {
            case .authorize(let target, let text, let request, let ttl):
                let modelTarget: ReferenceModel.Target
                switch target {
                case .key(let key): modelTarget = .key(secret: key.secret)
                case .unknownKey(let secret): modelTarget = .key(secret: secret)
                case .account(let id): modelTarget = .account(id)
                }
                return .decision(try model.authorize(modelTarget, usage: try usage(text), requestID: request, mode: ttl.map { .hold(ttl: $0) } ?? .debit))
            case .report(let id, let hold, let text, let request):
                return .decision(try model.report(id, hold: hold, usage: try usage(text), requestID: request))
            case .settle(let id, let hold, let text, let request):
                let final: [ModelUsageItem]? = try text.map { (t: String) throws(ModelError) in try usage(t, allowEmpty: true) }
                return .decision(try model.settle(id, hold: hold, usage: final, requestID: request))
            case .release(let id, let hold, let request):
                return .decision(try model.release(id, hold: hold, requestID: request))
            case .capture(let id, let hold, let amount, let request):
                return .decision(try model.capture(id, hold: hold, amount: amount, requestID: request))
            case .hold(let id, let amount, let ttl, let request):
                return .decision(try model.hold(id, amount: amount, ttl: ttl, requestID: request))
            case .credit(let id, let amount, let kind, let expires, let request):
                return .decision(try model.credit(id, amount: amount, kind: kind, expires: expires, requestID: request))
            case .debit(let id, let amount, let request):
                return .decision(try model.debit(id, amount: amount, requestID: request))
            case .setStatus(let id, let status):
                return .account(try model.setStatus(id, status))
            case .close(let id):
                model.close(id)
                return .done
            case .readAccount(let id):
                return .account(model.account(id))
            case .advance(let milliseconds):
                model.now += milliseconds
                return .done
            case .setLimits(let id, let key, let changes):
                model.setLimits(id, key: key?.id.rawValue, changes)
                return .done
            case .revoke(let key):
                model.revokeKey(key.id.rawValue, of: key.account)
                return .done
            case .setPrice(let meter, let itemModel, let price):
                model.setPrice(meter: meter, model: itemModel, price)
                return .done
            case .replay(let step):
                return runOnModel(step)
            }
        } catch {
            switch error {
            case .idempotencyConflict: return .error(TollgateError.Code.idempotencyConflict.rawValue)
            case .refused(let code): return .error(code)
            }
        }
    }

    /// Checks the books of every account (I2), every account's ledger against the model's, and
    /// that every account reads as the model's.
    mutating func finish() async throws {
        for id in model.accounts.keys.sorted() {
            _ = try await run(.readAccount(id))
        }
        try await compareLedgers(model.accounts.keys.sorted(), step: "the ledgers at the end", answer: "")
        let audit = try await engine.audit()
        guard audit.isClean else {
            throw divergence("audit", engine: "\(audit.drifting)", model: "clean", audit.drifting.flatMap(\.problems))
        }
    }

    /// Exact prices, read off the engine's own ledger without the model: for each account and
    /// item, everything charged (debits, report and settle captures, less refunds) adds up to
    /// ⌊total quantity × price / per⌋, however the usage was split, plus what settle refunds kept
    /// back so as not to refund a hold more than it charged (the model counts those). Holds only
    /// while prices stay the same.
    func checkCarriesFromLedger() async throws {
        for id in model.accounts.keys.sorted() {
            var byItem: [String: (quantity: Int64, amount: Int64, meter: String, model: String?)] = [:]
            for entry in try await fixture.allEntries(id) {
                guard let meter = entry.meter, let quantity = entry.quantity else { continue }
                let name = modelItemName(meter, entry.model)
                byItem[name, default: (0, 0, meter, entry.model)].quantity += quantity
                byItem[name, default: (0, 0, meter, entry.model)].amount += entry.amount.micros
            }
            for (name, item) in byItem.sorted(by: { $0.key < $1.key }) {
                guard let price = model.prices.price(meter: item.meter, model: item.model) else { continue }
                let expected = floorDivision(item.quantity * price.micros, price.per) + model.accounts[id]!.refundsKept[name, default: 0]
                guard -item.amount == expected else {
                    throw divergence("carries of \(id) \(name)", engine: "charged \(-item.amount) for \(item.quantity) in all",
                                     model: "⌊\(item.quantity) × \(price)⌋ + kept = \(expected)",
                                     ["a split of usage changed the total charged"])
                }
            }
        }
    }
}

// MARK: Generated sequences

/// The meters and models sequences draw usage from. tokens.output has no meter-wide price,
/// so tokens.output@tiny is an unknown meter; video.frames never has a price.
private let usageCatalogue: [(meter: String, model: String?, quantity: ClosedRange<Int64>, weight: Int)] = [
    ("api_call", nil, 1...2, 4),
    ("tokens.input", "big", 1...3_000, 4),
    ("tokens.output", "big", 1...1_500, 4),
    ("tokens.input", "small", 1...6_000, 3),
    ("tokens.output", "small", 1...2_500, 3),
    ("tokens.input", nil, 1...2_000, 1),
    ("tokens.input", "tiny", 1...1_000, 1),
    ("tokens.output", "tiny", 1...1_000, 1),
    ("compute.seconds", nil, 1...40, 2),
    ("compute.seconds", "gpu", 1...20, 1),
    ("video.frames", nil, 1...10, 1),
]

/// A random sequence of steps over several accounts, keys and limits.
struct SequenceGenerator {
    var rng: SplitMix64
    var accounts: [AccountID] = []
    var keys: [KnownKey] = []
    var requests = 0
    /// Steps with a request id, for replays and conflicting reuse.
    var issued: [Step] = []
    /// Whether this sequence changes and removes prices as it goes.
    var changesPrices = false

    init(seed: UInt64) { rng = SplitMix64(seed: seed) }

    mutating func int(_ range: ClosedRange<Int64>) -> Int64 { Int64.random(in: range, using: &rng) }
    mutating func chance(_ percent: Int) -> Bool { Int.random(in: 0..<100, using: &rng) < percent }
    mutating func pick<T>(_ items: [T]) -> T { items[Int.random(in: 0..<items.count, using: &rng)] }

    mutating func weighted<T>(_ options: [(T, Int)]) -> T {
        var roll = Int.random(in: 0..<options.reduce(0) { $0 + $1.1 }, using: &rng)
        for (value, weight) in options {
            if roll < weight { return value }
            roll -= weight
        }
        return options[options.count - 1].0
    }

    mutating func nextRequest() -> RequestID {
        requests += 1
        return try! RequestID("r\(requests)")
    }

    /// Month ends the clock starts a minute before: a 31-day month, the end of a year, February
    /// of a common year and of a leap year (2028-02-29).
    static let monthEnds: [(year: Int, month: Int, day: Int)] = [(2026, 1, 31), (2026, 12, 31), (2027, 2, 28), (2028, 2, 29), (2026, 4, 30)]

    /// A start time somewhere in 2026 to 2028 (by the model's calendar), often just before an
    /// hour, day or month ends, or a minute before one of `monthEnds` ends.
    mutating func startTime() -> Int64 {
        let year2026: Int64 = 1_767_225_600_000
        let moment = year2026 + int(0...(3 * 365 * 86_400_000))
        let periods = ModelPeriods(milliseconds: moment)
        switch int(0...4) {
        case 0: return periods.monthEnd - int(1...120_000)
        case 1: return periods.dayEnd - int(1...120_000)
        case 2: return periods.hourEnd - int(1...60_000)
        case 3:
            let end = pick(Self.monthEnds)
            return ModelPeriods.moment(end.year, end.month, end.day, 23, 59) + int(0...30_000)
        default: return moment
        }
    }

    /// Usage as text; now and then malformed (a zero quantity, no '=', a bad name, no model
    /// after '@', nothing at all), which both sides must refuse as invalid_argument.
    mutating func usage() -> String {
        if chance(3) {
            return pick(["api_call=0", "api_call", "video frames=1", "tokens.input@=5", "", "=3", "api_call=1,", "api_call=x"])
        }
        let count = weighted([(1, 5), (2, 4), (3, 2)])
        return (0..<count).map { _ in
            let entry = weighted(usageCatalogue.map { ($0, $0.weight) })
            return "\(modelItemName(entry.meter, entry.model))=\(int(entry.quantity))"
        }.joined(separator: ",")
    }

    /// When a grant expires: mostly within the next hours (often just past the end of the
    /// current hour, day or month), sometimes never, sometimes already (refused: expired).
    mutating func grantExpiry(_ now: Int64) -> Int64? {
        let periods = ModelPeriods(milliseconds: now)
        switch weighted([(0, 3), (1, 4), (2, 3), (3, 1), (4, 1)]) {
        case 0: return nil
        case 1: return now + int(500...120_000)
        case 2: return now + int(120_000...7_200_000)
        case 3: return pick([periods.hourEnd, periods.dayEnd, periods.monthEnd]) + int(-1...1)
        default: return now - int(0...5_000)
        }
    }

    /// Random limits for a scope: each limit set with some chance.
    mutating func limits(all: Bool) -> [LimitName: Int64?] {
        let ranges: [(LimitName, ClosedRange<Int64>, Int)] = [
            (.rps, 1...4, 30), (.rpm, 2...30, 30), (.rph, 5...150, 20), (.burst, 1...6, 15),
            (.tpm, 1_000...20_000, 35), (.concurrency, 1...3, 30),
            (.hourlyCap, 0...80_000, 25), (.dailyCap, 10_000...300_000, 25), (.monthlyCap, 20_000...1_000_000, 20),
            (.lifetimeCap, 50_000...2_000_000, 15),
        ]
        var changes: [LimitName: Int64?] = [:]
        if all {
            for (name, range, percent) in ranges where chance(percent) { changes.updateValue(int(range), forKey: name) }
        }
        if changes.isEmpty {
            for _ in 0..<int(1...3) {
                let (name, range, _) = pick(ranges)
                changes.updateValue(chance(35) ? nil : int(range), forKey: name)
            }
        }
        return changes
    }

    mutating func advance(_ now: Int64) -> Int64 {
        let periods = ModelPeriods(milliseconds: now)
        switch weighted([(0, 40), (1, 25), (2, 14), (3, 9), (4, 12)]) {
        case 0: return int(0...1_500)
        case 1: return int(1_000...70_000)
        case 2: return int(60_000...1_200_000)
        case 3: return int(1_200_000...10_800_000)
        default:
            // To just before the end of the hour, day or month, so the next steps cross it.
            let end = pick([periods.hourEnd, periods.hourEnd, periods.dayEnd, periods.monthEnd])
            return max(0, end - now - int(1...3_000))
        }
    }

    /// The next step, given what the model knows (open holds, statuses).
    mutating func next(_ model: ReferenceModel) -> Step {
        var account = pick(accounts)
        var kind = weighted([
            ("authorize", 28), ("report", 12), ("settle", 8), ("release", 4), ("capture", 4), ("hold", 3),
            ("credit", 7), ("debit", 3), ("status", 3), ("advance", 16), ("replay", 5), ("reuse", 2),
            ("limits", 2), ("revoke", 1), ("read", 2), ("price", changesPrices ? 1 : 0),
        ])
        // Steps on holds mostly go to a hold still open (not yet due to expire).
        func live(_ id: AccountID) -> [Int64] {
            model.accounts[id]!.holds.values.filter { $0.expiresAt > model.now }.map(\.sequence).sorted()
        }
        let withHolds = accounts.filter { !live($0).isEmpty }
        var holdMode = chance(50)
        if ["report", "settle", "release", "capture"].contains(kind), !chance(10) {
            if withHolds.isEmpty {
                (kind, holdMode) = ("authorize", true)  // make one to work on
            } else {
                account = pick(withHolds)
            }
        }
        let state = model.accounts[account]!
        let openHolds = live(account)
        func holdSequence() -> Int64 {
            if !openHolds.isEmpty && !chance(8) { return pick(openHolds) }
            return int(1...(state.lastHoldSequence + 1))
        }
        let step: Step
        switch kind {
        case "authorize":
            let ownKeys = keys.filter { $0.account == account }
            let target: Step.Target
            if chance(5) {
                target = .unknownKey("tgk_" + String(repeating: "x", count: 40))
            } else if !ownKeys.isEmpty && chance(60) {
                target = .key(pick(ownKeys))
            } else {
                target = .account(account)
            }
            let ttl: Int64? = holdMode ? weighted([(int(200...30_000), 3), (int(30_000...900_000), 2), (int(900_000...7_200_000), 1)]) : nil
            step = .authorize(target, usage(), nextRequest(), holdTTL: ttl)
        case "report":
            step = .report(account, hold: holdSequence(), usage(), nextRequest())
        case "settle":
            step = .settle(account, hold: holdSequence(), chance(65) ? (chance(8) ? "" : usage()) : nil, nextRequest())
        case "release":
            step = .release(account, hold: holdSequence(), nextRequest())
        case "capture":
            step = .capture(account, hold: holdSequence(), amount: int(1...20_000), nextRequest())
        case "hold":
            step = .hold(account, amount: int(1...50_000), ttl: int(200...600_000), nextRequest())
        case "credit":
            let creditKind = weighted([(CreditKind.topup, 5), (.grant, 4), (.adjustment, 2)])
            var amount = int(1_000...60_000)
            if creditKind == .adjustment && chance(50) { amount = -int(1...60_000) }
            let expires = creditKind == .grant ? grantExpiry(model.now) : nil
            step = .credit(account, amount: amount, creditKind, expires: expires, nextRequest())
        case "debit":
            step = .debit(account, amount: int(1...30_000), nextRequest())
        case "status":
            step = .setStatus(account, state.status == .frozen ? .active : (chance(30) ? .frozen : .active))
        case "advance":
            return .advance(milliseconds: advance(model.now))
        case "replay" where !issued.isEmpty:
            return .replay(pick(issued))
        case "reuse" where !issued.isEmpty:
            // An earlier request id of this account for a new operation: refused as a conflict
            // if the first was allowed, decided afresh if it was refused.
            guard let earlier = issued.compactMap(\.requestKey).filter({ $0.account == account }).last else {
                return .readAccount(account)
            }
            step = chance(50)
                ? .debit(account, amount: int(1...5_000), earlier.request)
                : .authorize(.account(account), usage(), earlier.request, holdTTL: nil)
            issued.append(step)
            return step
        case "price":
            let (meter, itemModel) = pick([("api_call", nil), ("tokens.input", nil), ("tokens.output", "big"),
                                           ("tokens.output", "small"), ("compute.seconds", "gpu")] as [(String, String?)])
            return .setPrice(meter: meter, model: itemModel, chance(25) ? nil : ModelPrice(micros: int(0...8_000), per: pick([1, 3, 1_000, 999])))
        case "limits":
            let ownKeys = keys.filter { $0.account == account }
            return .setLimits(account, key: !ownKeys.isEmpty && chance(50) ? pick(ownKeys) : nil, limits(all: false))
        case "revoke":
            let active = keys.filter { $0.account == account && model.accounts[account]!.keys[$0.id.rawValue]?.revoked == false }
            guard !active.isEmpty, chance(25) else { return .readAccount(account) }
            return .revoke(pick(active))
        default:
            return .readAccount(account)
        }
        issued.append(step)
        return step
    }
}

/// Builds a world (prices, accounts, keys, limits, credit) and runs `operations` generated
/// steps, comparing the engine with the model after each; then audits. Returns the first
/// disagreement, if any.
func runAgreementSequence(
    seed: UInt64, operations: Int, pricesChange: Bool? = nil, tamper: ((inout AgreementHarness) async throws -> Void)? = nil
) async throws -> (divergence: Divergence?, coverage: [String: Int]) {
    var generator = SequenceGenerator(seed: seed)
    var harness = try await AgreementHarness(seed: seed, start: generator.startTime())
    do {
        // Prices: exact rationals, some per model, one meter-wide fallback, some meters without.
        try await harness.setPrice(meter: "api_call", micros: generator.int(0...3_000), per: generator.pick([1, 1, 3]))
        try await harness.setPrice(meter: "tokens.input", micros: generator.int(100...3_000), per: generator.pick([1_000, 7_919]))
        try await harness.setPrice(meter: "tokens.input", model: "big", micros: generator.int(1_000...5_000), per: 1_000)
        try await harness.setPrice(meter: "tokens.output", model: "big", micros: generator.int(3_000...15_000), per: generator.pick([1_000, 999]))
        try await harness.setPrice(meter: "tokens.output", model: "small", micros: generator.int(0...300), per: generator.pick([7, 13, 1_000_000]))
        try await harness.setPrice(meter: "compute.seconds", micros: generator.int(1...999), per: generator.pick([1, 3]))
        try await harness.setPrice(meter: "compute.seconds", model: "gpu", micros: generator.int(500...5_000), per: 1)

        let names = ["acct-0", "a{b}:1", "ünï côde", "x y\tz"]
        for index in 0..<Int(generator.int(3...4)) {
            let id = try AccountID(names[index])
            try await harness.createAccount(id, creditLimit: generator.chance(25) ? generator.int(1...40_000) : 0)
            generator.accounts.append(id)
            for _ in 0..<generator.int(1...3) {
                generator.keys.append(try await harness.createKey(for: id))
            }
        }
        for id in generator.accounts {
            _ = try await harness.run(.setLimits(id, key: nil, generator.limits(all: true)))
            _ = try await harness.run(.credit(id, amount: generator.int(5_000...200_000), .topup, expires: nil, generator.nextRequest()))
            if generator.chance(60) {
                let expires = generator.grantExpiry(harness.model.now)
                _ = try await harness.run(.credit(id, amount: generator.int(5_000...100_000), .grant, expires: expires, generator.nextRequest()))
            }
        }
        for key in generator.keys where generator.chance(60) {
            _ = try await harness.run(.setLimits(key.account, key: key, generator.limits(all: true)))
        }
        if let tamper { try await tamper(&harness) }
        generator.changesPrices = generator.chance(50)
        if let pricesChange { generator.changesPrices = pricesChange }

        // Now and then an account is closed two thirds of the way through: the rest of the
        // sequence works on it too.
        let closeAt = generator.chance(40) ? operations * 2 / 3 : -1
        for index in 0..<operations {
            if index == closeAt { _ = try await harness.run(.close(generator.pick(generator.accounts))) }
            _ = try await harness.run(generator.next(harness.model))
            if index % 25 == 24 {
                for id in generator.accounts { _ = try await harness.run(.readAccount(id)) }
            }
        }
        try await harness.finish()
        if !generator.changesPrices { try await harness.checkCarriesFromLedger() }
        return (nil, harness.coverage)
    } catch let divergence as Divergence {
        return (divergence, harness.coverage)
    }
}
