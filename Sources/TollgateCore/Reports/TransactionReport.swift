import TollgateRedis

/// An account's transactions over `[from, to)`, read page by page so any size streams in
/// constant memory. The figures reconcile: opening + credits − debits = closing.
public struct TransactionReport: Sendable {
    public let account: AccountID
    public let from: Int64
    public let to: Int64
    /// The balance before the first entry of the range.
    public let openingBalance: Money

    /// Sums of what has been read so far.
    public struct Totals: Sendable, Hashable {
        public var credits: Int64 = 0
        public var debits: Int64 = 0
        public var entries = 0
        /// The balance after the last entry read (the opening balance before any).
        public var closing: Int64

        /// Totals of nothing yet, starting from the report's opening balance.
        public init(opening: Money) { closing = opening.micros }

        /// Adds one entry; `amount_out_of_range` when the totals would leave what Int64 holds.
        public mutating func add(_ entry: LedgerEntry) throws(TollgateError) {
            if entry.amount.micros > 0 {
                try credits.addStored(entry.amount.micros, "the report's credits")
            } else {
                try debits.addStored(-entry.amount.micros, "the report's debits")
            }
            entries += 1
            closing = entry.balance.micros
        }

        /// opening + credits − debits = closing, the check every report passes.
        public func reconciles(opening: Money) -> Bool {
            var sum = opening.micros
            do {
                try sum.addStored(credits)
                try sum.addStored(-debits)
            } catch {
                return false
            }
            return sum == closing
        }
    }

    /// The report's fixed columns.
    public static let columns = [
        "time", "entry_id", "kind", "credit", "debit", "balance", "held", "meter", "model", "quantity", "key",
        "request_id", "hold_id", "reference", "flag",
    ]

    /// The CSV header and the opening-balance row.
    public func csvHead() -> String {
        CSV.line(Self.columns) + CSV.line(Self.summaryRow(time: from, kind: "opening_balance", credit: "", debit: "", balance: openingBalance))
    }

    /// One entry as a CSV row.
    public static func csvRow(_ entry: LedgerEntry) -> String {
        let amount = entry.amount
        return CSV.line([
            Timestamp.iso8601(milliseconds: entry.time), entry.id, entry.kind.rawValue,
            amount.micros > 0 ? amount.description : "", amount.micros < 0 ? (Money(micros: -amount.micros) ?? .zero).description : "",
            entry.balance.description, entry.held.description, entry.meter ?? "", entry.model ?? "",
            entry.quantity.map(String.init) ?? "", entry.keyID ?? "", CSV.text(entry.requestID), entry.holdID?.description ?? "",
            CSV.text(entry.reference ?? ""), entry.flag ?? "",
        ])
    }

    /// The totals row: credits, debits and the closing balance.
    public func csvTail(_ totals: Totals) -> String {
        CSV.line(Self.summaryRow(
            time: to, kind: "totals", credit: (Money(micros: totals.credits) ?? .zero).description,
            debit: (Money(micros: totals.debits) ?? .zero).description, balance: Money(micros: totals.closing) ?? .zero))
    }

    private static func summaryRow(time: Int64, kind: String, credit: String, debit: String, balance: Money) -> [String] {
        [Timestamp.iso8601(milliseconds: time), "", kind, credit, debit, balance.description] + Array(repeating: "", count: columns.count - 6)
    }
}

extension Engine {
    /// Starts a transaction report over `[from, to)`: finds the opening balance. Refused with
    /// `range_archived` when the range starts before entries archived out of Redis.
    public func transactionReport(_ id: AccountID, from: Int64, to: Int64) async throws(TollgateError) -> TransactionReport {
        guard to > from else { throw TollgateError(.invalidArgument, "'to' must be after 'from'") }
        guard from >= 0 else { throw TollgateError(.invalidArgument, "'from' must not be before 1970") }
        // Bring the account up to the clock first, so expiries already due are in the ledger
        // and a report of a closed period never changes afterwards.
        _ = try await account(id)
        let keys = AccountKeys(id)
        let checkpoint = try await send(RedisCommand(["HMGET", keys.account, "status", "ckpt_id", "ckpt_balance"]))
        guard let fields = checkpoint.array, fields.count == 3, fields[0].string != nil else {
            throw TollgateError(.accountNotFound, "no account '\(id)'")
        }
        let before = try LedgerEntry.parse(
            streamEntries: try await send(RedisCommand(["XREVRANGE", keys.ledger, "(\(from)-0", "-", "COUNT", "1"])), account: id)
        var opening = before.first?.balance ?? .zero
        if before.isEmpty, let checkpointID = fields[1].string {
            // Everything before the range was archived; that is fine only if the range starts
            // after the last archived entry.
            guard let checkpointMs = checkpointID.split(separator: "-").first.flatMap({ Int64($0) }), checkpointMs < from else {
                throw TollgateError(.rangeArchived, "entries up to \(checkpointID) were archived out of Redis; start the range after them or read the archive file")
            }
            opening = fields[2].string.flatMap { Int64($0) }.flatMap(Money.init(micros:)) ?? .zero
        }
        return TransactionReport(account: id, from: from, to: to, openingBalance: opening)
    }

    /// The range's entries after `after` (an entry id; nil: from the start), oldest first,
    /// at most `pageSize`. A page shorter than `pageSize` is the last.
    public func ledgerPage(of report: TransactionReport, after: String?, pageSize: Int = 1000) async throws(TollgateError) -> [LedgerEntry] {
        try await ledgerRange(report.account, from: after.map { "(" + $0 } ?? "\(report.from)-0", to: "(\(report.to)-0", count: pageSize)
    }

    /// Calls `body` with the range's entries, oldest first, `pageSize` at a time.
    public func forEachLedgerPage(
        of report: TransactionReport, pageSize: Int = 1000,
        _ body: ([LedgerEntry]) async throws -> Void
    ) async throws {
        var after: String?
        while true {
            let page = try await ledgerPage(of: report, after: after, pageSize: pageSize)
            if !page.isEmpty { try await body(page) }
            guard page.count == pageSize, let last = page.last else { return }
            after = last.id
        }
    }

    func ledgerRange(_ id: AccountID, from: String, to: String, count: Int) async throws(TollgateError) -> [LedgerEntry] {
        try LedgerEntry.parse(
            streamEntries: try await send(RedisCommand(["XRANGE", AccountKeys(id).ledger, from, to, "COUNT", String(count)])),
            account: id)
    }
}
