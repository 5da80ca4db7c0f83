import TollgateRedis

/// What archiving did on one account.
public struct ArchiveResult: Sendable, Hashable {
    public var account: AccountID
    /// Entries written to the archive and then removed from Redis.
    public var entries: Int
    /// The last archived entry; the audit starts after it.
    public var lastEntryID: String?
}

extension Engine {
    /// Moves an account's ledger entries older than `before` out of Redis: `write` gets
    /// them page by page (oldest first) and must make them durable; only after it returns
    /// for every page are they removed, leaving a checkpoint so `audit` still balances.
    /// Refused with `archive_mismatch` (nothing removed) if the ledger changed before the cut.
    public func archiveLedger(
        _ id: AccountID, before: Int64, write: ([LedgerEntry]) async throws -> Void
    ) async throws -> ArchiveResult {
        let cut = "\(before)-0"
        var lower = "-"
        var last: String?
        var count = 0
        while true {
            let page = try await ledgerRange(id, from: lower, to: "(" + cut, count: 1000)
            if page.isEmpty { break }
            try await write(page)
            count += page.count
            last = page.last?.id
            guard page.count == 1000, let newest = page.last else { break }
            lower = "(" + newest.id
        }
        guard let last else { return ArchiveResult(account: id, entries: 0, lastEntryID: nil) }
        let decision = try await step("ledger_trim", id, nil, [cut, last])
        guard decision.allowed else {
            throw TollgateError(.redisError, "ledger_trim refused: \(decision.reason?.rawValue ?? "")")
        }
        return ArchiveResult(account: id, entries: count, lastEntryID: last)
    }
}
