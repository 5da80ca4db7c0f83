@testable import TollgateCore
import TollgateRedis

/// Reads an account's books around each step of a randomized test: the stored balance, held
/// and promotional figures, and the ledger entries written since the last look. A step that
/// moved a figure without the entries to match, or wrote entries whose running figures do not
/// end where the account is, is a problem, whatever the reply said.
struct LedgerWatch {
    struct Figures: Equatable, CustomStringConvertible {
        var balance: Int64
        var held: Int64
        var promotional: Int64
        var description: String { "balance \(balance), held \(held), promotional \(promotional) micro-credits" }
    }

    /// What one step did to one account.
    struct Effect {
        var before: Figures
        var after: Figures
        /// The entries written since the last look, oldest first.
        var entries: [LedgerEntry]
        var problems: [String]
        var moved: Bool { before != after }
    }

    let engine: Engine
    private var seen: [AccountID: (figures: Figures, newest: String?)] = [:]

    init(engine: Engine) { self.engine = engine }

    /// Starts watching `id` from its present state.
    mutating func mark(_ id: AccountID) async throws {
        let newest = try await engine.redis.send("XREVRANGE", AccountKeys(id).ledger, "+", "-", "COUNT", "1").array?.first?.array?.first?.string
        seen[id] = (try await figures(id), newest)
    }

    /// What happened to `id` since the last look (`step` names it in problems).
    mutating func check(_ id: AccountID, after step: String) async throws -> Effect {
        guard let previous = seen[id] else { preconditionFailure("mark \(id) first") }
        let now = try await figures(id)
        let entries = try await engine.ledgerForward(id, after: previous.newest, through: "+", count: 10_000)
        var problems: [String] = []
        let amounts = entries.reduce(Int64(0)) { $0 + $1.amount.micros }
        let heldChanges = entries.reduce(Int64(0)) { $0 + $1.heldDelta.micros }
        if now.balance - previous.figures.balance != amounts {
            problems.append("\(step): \(id)'s balance moved by \(now.balance - previous.figures.balance), its new entries by \(amounts)")
        }
        if now.held - previous.figures.held != heldChanges {
            problems.append("\(step): \(id)'s held moved by \(now.held - previous.figures.held), its new entries by \(heldChanges)")
        }
        if let newest = entries.last, newest.balance.micros != now.balance || newest.held.micros != now.held {
            problems.append("\(step): \(id)'s newest entry says balance \(newest.balance), held \(newest.held); the account holds \(now)")
        }
        seen[id] = (now, entries.last?.id ?? previous.newest)
        return Effect(before: previous.figures, after: now, entries: entries, problems: problems)
    }

    private func figures(_ id: AccountID) async throws -> Figures {
        let fields = try await engine.redis.send("HMGET", AccountKeys(id).account, "balance", "held", "promo").array ?? []
        func number(_ index: Int) -> Int64 { index < fields.count ? fields[index].string.flatMap { Int64($0) } ?? 0 : 0 }
        return Figures(balance: number(0), held: number(1), promotional: number(2))
    }
}
