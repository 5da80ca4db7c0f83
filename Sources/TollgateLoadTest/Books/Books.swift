import TollgateCore

/// What the client saw applied on one account, to check against its ledger afterwards.
struct AccountBooks: Sendable {
    /// Request ids the ledger must show (allowed calls that change money or holds).
    var required: Set<String> = []
    /// Request ids the ledger may show (the required ones, and allowed calls that may write
    /// nothing, such as a settle with nothing left to release).
    var permitted: Set<String> = []
    /// Request ids whose fate is unknown (the call failed: it may or may not have been applied).
    var unknown: Set<String> = []
    /// The net change of balance of the known calls, in micro-credits.
    var expectedNet: Int64 = 0
    /// Coupon redemptions whose outcome is unknown (their entries may or may not exist).
    var uncertainCoupons = 0

    mutating func merge(_ other: AccountBooks) {
        required.formUnion(other.required)
        permitted.formUnion(other.permitted)
        unknown.formUnion(other.unknown)
        expectedNet += other.expectedNet
        uncertainCoupons += other.uncertainCoupons
    }
}

/// The client's side of the books, per account; one per worker, merged at the end.
struct Books: Sendable {
    var accounts: [AccountID: AccountBooks] = [:]

    /// An allowed call: `net` is its change of balance; `required` whether it must have
    /// written a ledger entry.
    mutating func applied(_ account: AccountID, _ requestID: String, net: Int64, required: Bool) {
        accounts[account, default: AccountBooks()].permitted.insert(requestID)
        if required { accounts[account, default: AccountBooks()].required.insert(requestID) }
        accounts[account, default: AccountBooks()].expectedNet += net
    }

    /// How the books name a coupon redemption's entry (it has no caller's request id).
    static func couponKey(_ entryID: String) -> String { "coupon-entry:" + entryID }

    /// A redemption whose outcome is not known.
    mutating func uncertainCoupon(_ account: AccountID) {
        accounts[account, default: AccountBooks()].uncertainCoupons += 1
    }

    /// Calls whose outcome is not known.
    mutating func uncertain(_ account: AccountID, _ requestIDs: [String]) {
        accounts[account, default: AccountBooks()].unknown.formUnion(requestIDs)
    }

    mutating func merge(_ other: Books) {
        for (account, books) in other.accounts { accounts[account, default: AccountBooks()].merge(books) }
    }
}

/// The result of checking the books after a run.
public struct BooksCheck: Sendable, Hashable {
    /// Every allowed call is in the ledger, nothing else is, the amounts add up, and audit
    /// is clean on every account of the run.
    public var ok: Bool { problems.isEmpty }
    /// Accounts checked.
    public var accountsChecked: Int
    /// Ledger entries read.
    public var entriesChecked: Int
    /// Calls whose outcome was unknown (failed requests), left out of the check.
    public var uncertainCalls: Int
    /// What is wrong (at most 20 lines, then a count).
    public var problems: [String]
}

extension Books {
    /// Reads every account's ledger and audit through `session` and compares them with what
    /// the client saw.
    func check(_ session: any LoadSession) async throws(LoadTestError) -> BooksCheck {
        var problems: [String] = []
        var entries = 0
        var uncertain = 0
        let ids = accounts.keys.sorted()
        for id in ids {
            let books = accounts[id] ?? AccountBooks()
            uncertain += books.unknown.count + books.uncertainCoupons
            var seen: Set<String> = []
            var sum: Int64 = 0
            var cursor: String?
            var uncertainCoupons = books.uncertainCoupons
            repeat {
                let page = try await session.ledger(id, cursor: cursor)
                for record in page.records where record.kind != "expire" {
                    entries += 1
                    let key = record.kind == "coupon" ? Books.couponKey(record.id) : record.requestID
                    seen.insert(key)
                    if books.unknown.contains(key) { continue }
                    if record.kind == "coupon", !books.permitted.contains(key), uncertainCoupons > 0 {
                        uncertainCoupons -= 1
                        continue
                    }
                    if !books.permitted.contains(key) {
                        problems.append("\(id): ledger entry (\(record.kind) \(record.amount)) for request '\(record.requestID)', which the load test did not see allowed")
                        continue
                    }
                    sum += record.amount.micros
                }
                cursor = page.next
            } while cursor != nil
            let missing = books.required.subtracting(seen)
            if !missing.isEmpty {
                problems.append("\(id): \(missing.count) allowed call(s) missing from the ledger, e.g. '\(missing.sorted().first!)'")
            }
            if sum != books.expectedNet {
                problems.append("\(id): the ledger's entries for the run's calls add up to \(sum) micro-credits, the allowed calls to \(books.expectedNet)")
            }
        }
        problems += try await session.auditProblems(ids).map { "audit: \($0)" }
        if problems.count > 20 {
            let more = problems.count - 20
            problems = Array(problems.prefix(20)) + ["... and \(more) more"]
        }
        return BooksCheck(accountsChecked: ids.count, entriesChecked: entries, uncertainCalls: uncertain, problems: problems)
    }
}
