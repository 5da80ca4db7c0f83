import TollgateRedis

/// What the audit found on one account.
public struct AccountAudit: Sendable, Hashable {
    public var account: AccountID
    /// The balance Redis holds.
    public var balance: Money
    /// The sum of the account's ledger entries, up to the newest one at the snapshot.
    public var ledgerSum: Money
    /// The held amount Redis holds.
    public var held: Money
    /// What open holds still reserve.
    public var openHolds: Money
    /// How many ledger entries were read.
    public var entries: Int
    /// Everything found wrong; empty when the account's books balance.
    public var problems: [String]

    public var isClean: Bool { problems.isEmpty }
}

/// The result of auditing every account.
public struct AuditReport: Sendable, Hashable {
    /// Every account checked.
    public var accounts: [AccountAudit]
    /// The accounts whose books do not balance.
    public var drifting: [AccountAudit] { accounts.filter { !$0.isClean } }
    public var isClean: Bool { accounts.allSatisfy(\.isClean) }
}

extension Engine {
    /// Checks I2 on every account: balance = sum of its ledger entries, each entry's balance
    /// and held figures follow from the one before, held = what open holds reserve, and no
    /// hold refunded more for a usage item than it charged for it (nor in all).
    public func audit() async throws(TollgateError) -> AuditReport {
        var results: [AccountAudit] = []
        for id in try await accountIDs() {
            do {
                results.append(try await audit(id))
            } catch where error.code == .accountNotFound {
                continue  // deleted between the scan and the audit
            }
        }
        return AuditReport(accounts: results.sorted { $0.account < $1.account })
    }

    /// Checks one account's books without stopping writers: an atomic snapshot names the
    /// newest entry, then the ledger up to it is summed page by page (entries never change).
    public func audit(_ id: AccountID) async throws(TollgateError) -> AccountAudit {
        let keys = AccountKeys(id)
        var command = RedisCommand("FCALL_RO")
        command.append("audit_snapshot")
        command.append(3)
        for key in [keys.account, keys.ledger, keys.holds] { command.append(key) }
        let reply: RESPValue
        do {
            reply = try await redis.call(TollgateLua.library, command)
        } catch {
            throw TollgateError(error)
        }
        if case .error(let message) = reply { throw TollgateError(serverReply: message) }
        guard let fields = reply.array, fields.count == 11,
              let balance = fields[0].int64, let held = fields[1].int64,
              let lastID = fields[3].string, let openSum = fields[4].int64,
              let checkpointBalance = fields[6].int64, let checkpointHeld = fields[7].int64,
              let checkpointID = fields[8].string, let promotional = fields[9].int64,
              let grantSum = fields[10].int64 else {
            throw TollgateError(.redisError, "unexpected audit snapshot: \(reply)")
        }
        var problems: [String] = []
        // Archived entries left a checkpoint: the figures after the last of them.
        var runningBalance = checkpointBalance
        var runningHeld = checkpointHeld
        var count = 0
        var after: String? = checkpointID.isEmpty ? nil : checkpointID
        var refunds = HoldRefundCheck()
        while !lastID.isEmpty {
            let page = try await ledgerForward(id, after: after, through: lastID, count: 1000)
            for entry in page {
                try runningBalance.addStored(entry.amount.micros, "the ledger's sum")
                try runningHeld.addStored(entry.heldDelta.micros, "the ledger's held sum")
                if let problem = try refunds.add(entry), problems.count < 20 { problems.append(problem) }
                if problems.count < 20 {
                    if entry.balance.micros != runningBalance {
                        problems.append("entry \(entry.id) says balance \(entry.balance) but the entries up to it sum to \(Money(micros: runningBalance).map(\.description) ?? String(runningBalance))")
                    }
                    if entry.held.micros != runningHeld {
                        problems.append("entry \(entry.id) says held \(entry.held) but the held changes up to it sum to \(Money(micros: runningHeld).map(\.description) ?? String(runningHeld))")
                    }
                }
            }
            count += page.count
            guard let last = page.last, last.id != lastID, page.count == 1000 else { break }
            after = last.id
        }
        for problem in try refunds.finish() where problems.count < 20 { problems.append(problem) }
        if runningBalance != balance {
            problems.append("balance is \(format(balance)) but the ledger sums to \(format(runningBalance))")
        }
        if runningHeld != held {
            problems.append("held is \(format(held)) but the ledger's held changes sum to \(format(runningHeld))")
        }
        if openSum != held {
            problems.append("held is \(format(held)) but open holds reserve \(format(openSum))")
        }
        if promotional != grantSum || promotional < 0 {
            problems.append("promotional credit is \(format(promotional)) but its grants hold \(format(grantSum))")
        }
        return AccountAudit(
            account: id, balance: Money(micros: balance) ?? .zero, ledgerSum: Money(micros: runningBalance) ?? .zero,
            held: Money(micros: held) ?? .zero, openHolds: Money(micros: openSum) ?? .zero,
            entries: count, problems: problems)
    }

    /// Every account id, found by `SCAN` over account keys (on a cluster, over every primary).
    public func accountIDs() async throws(TollgateError) -> [AccountID] {
        do {
            return try await redis.scanKeys(matching: AccountKeys.accountPattern).compactMap(AccountKeys.accountID(fromAccountKey:))
        } catch {
            throw TollgateError(error)
        }
    }

    private func format(_ micros: Int64) -> String {
        Money(micros: micros)?.description ?? "\(micros) micro-credits"
    }
}

/// Checks, from the ledger alone, that no hold's refunds exceed its charges: per usage item
/// (meter and model) and for the hold in all. Refunds happen only at settle, so a hold's
/// captures and refunds all carry its sequence; a refund larger than what that hold charged
/// for the item gave back money that was never paid (a price cut mid-stream once did that).
///
/// Only holds whose opening `hold` entry is among the entries read are checked: archiving may
/// have removed the first captures of an older hold, and its remaining refunds would then look
/// larger than its charges without being so. Those holds are checked by the audit of the
/// archive that holds their whole history, not here. Memory stays bounded by the holds open
/// at once: a hold is checked and forgotten at its closing `release` or `expire` entry.
struct HoldRefundCheck {
    private struct Sums {
        var charged: Int64 = 0
        var refunded: Int64 = 0
    }

    /// Open holds seen opened: per item (`meter@model`, `""` for a plain capture) the sums.
    private var holds: [Int64: [String: Sums]] = [:]

    /// Takes in one entry; returns a problem when a hold it closes refunded too much.
    mutating func add(_ entry: LedgerEntry) throws(TollgateError) -> String? {
        guard let hold = entry.holdID?.sequence else { return nil }
        switch entry.kind {
        case .hold:
            holds[hold] = [:]
        case .capture, .refund:
            guard holds[hold] != nil else { return nil }
            let item = entry.meter.map { "\($0)@\(entry.model ?? "")" } ?? ""
            // Exact integers: a capture's amount is minus what it charged, a refund's what it gave back.
            if entry.kind == .capture {
                try holds[hold]![item, default: Sums()].charged.addStored(-entry.amount.micros, "a hold's charges")
            } else {
                try holds[hold]![item, default: Sums()].refunded.addStored(entry.amount.micros, "a hold's refunds")
            }
        case .release, .expire:
            guard let items = holds.removeValue(forKey: hold) else { return nil }
            return try Self.problem(hold, items)
        default:
            break
        }
        return nil
    }

    /// The problems of holds still open at the end of what was read.
    mutating func finish() throws(TollgateError) -> [String] {
        defer { holds = [:] }
        var problems: [String] = []
        for hold in holds.keys.sorted() {
            if let problem = try Self.problem(hold, holds[hold]!) { problems.append(problem) }
        }
        return problems
    }

    private static func problem(_ hold: Int64, _ items: [String: Sums]) throws(TollgateError) -> String? {
        var total = Sums()
        var over: [String] = []
        for (item, sums) in items.sorted(by: { $0.key < $1.key }) {
            try total.charged.addStored(sums.charged, "a hold's charges")
            try total.refunded.addStored(sums.refunded, "a hold's refunds")
            if sums.refunded > sums.charged {
                over.append("\(item.isEmpty ? "(plain)" : item) refunded \(sums.refunded) of \(sums.charged) micro-credits charged")
            }
        }
        if total.refunded > total.charged {
            over.append("in all refunded \(total.refunded) of \(total.charged) micro-credits charged")
        }
        return over.isEmpty ? nil : "hold \(hold) refunded more than it charged: \(over.joined(separator: "; "))"
    }
}
