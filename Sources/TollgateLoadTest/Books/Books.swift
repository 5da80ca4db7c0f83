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
    /// Allowed calls whose answer named another amount than the plan's prices make it.
    var mismatches = 0
    /// The first of them, described.
    var firstMismatch: String?

    /// Whether every call on the account has a known outcome.
    var certain: Bool { unknown.isEmpty && uncertainCoupons == 0 }

    mutating func merge(_ other: AccountBooks) {
        required.formUnion(other.required)
        permitted.formUnion(other.permitted)
        unknown.formUnion(other.unknown)
        expectedNet += other.expectedNet
        uncertainCoupons += other.uncertainCoupons
        mismatches += other.mismatches
        if firstMismatch == nil { firstMismatch = other.firstMismatch }
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

    /// An allowed call whose answer says it moved `answered` micro-credits where the plan's
    /// prices make it `expected`: a book problem whatever the ledger says.
    mutating func mismatch(_ account: AccountID, _ requestID: String, _ what: String, answered: Int64, expected: Int64) {
        accounts[account, default: AccountBooks()].mismatches += 1
        if accounts[account, default: AccountBooks()].firstMismatch == nil {
            accounts[account, default: AccountBooks()].firstMismatch =
                "\(what) '\(requestID)' answered \(answered) micro-credits, the plan's prices make it \(expected)"
        }
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
    /// The books were checked and are right: every allowed call is in the ledger, nothing
    /// else is, every answer charged what the plan's prices make it, the amounts add up, the
    /// final balances are right (where no call's outcome is unknown) and audit is clean on
    /// every account of the run. False when they were not checked.
    public var ok: Bool { notCheckedReason == nil && problems.isEmpty }
    /// Whether the check ran.
    public var checked: Bool { notCheckedReason == nil }
    /// Why the books were not checked (nothing to check, the target unreachable), or nil.
    public var notCheckedReason: String?
    /// Accounts checked.
    public var accountsChecked: Int
    /// Ledger entries read.
    public var entriesChecked: Int
    /// Calls whose outcome was unknown (failed requests), left out of the check.
    public var uncertainCalls: Int
    /// Accounts whose final balance was compared (those without an unknown outcome).
    public var balancesChecked: Int
    /// What is wrong (at most 20 lines, then a count).
    public var problems: [String]

    init(accountsChecked: Int, entriesChecked: Int, uncertainCalls: Int, balancesChecked: Int = 0, problems: [String]) {
        self.notCheckedReason = nil
        self.accountsChecked = accountsChecked
        self.entriesChecked = entriesChecked
        self.uncertainCalls = uncertainCalls
        self.balancesChecked = balancesChecked
        self.problems = problems
    }

    /// Books that were not checked, and why.
    static func notChecked(_ reason: String, uncertainCalls: Int) -> BooksCheck {
        var check = BooksCheck(accountsChecked: 0, entriesChecked: 0, uncertainCalls: uncertainCalls, problems: [])
        check.notCheckedReason = reason
        return check
    }
}

extension Books {
    /// Reads every account's ledger and audit through `session` and compares them with what
    /// the client saw.
    func check(_ session: any LoadSession) async throws(LoadTestError) -> BooksCheck {
        var problems: [String] = []
        var entries = 0
        var uncertain = 0
        var balances = 0
        let ids = accounts.keys.sorted()
        for id in ids {
            let books = accounts[id] ?? AccountBooks()
            uncertain += books.unknown.count + books.uncertainCoupons
            var seen: Set<String> = []
            var sum: Int64 = 0
            var cursor: String?
            var uncertainCoupons = books.uncertainCoupons
            var expired: Int64 = 0
            repeat {
                let page = try await session.ledger(id, cursor: cursor)
                for record in page.records {
                    // Promotional credit running out: no call of the run wrote it.
                    if record.kind == "expire" {
                        expired += record.amount.micros
                        continue
                    }
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
                problems.append("\(id): the ledger's entries for the run's calls add up to \(sum) micro-credits, the allowed calls at the plan's prices to \(books.expectedNet)")
            }
            if books.mismatches > 0 {
                problems.append("\(id): \(books.mismatches) allowed call(s) charged another amount than the plan's prices, e.g. \(books.firstMismatch ?? "?")")
            }
            // With every outcome known, the account must hold exactly what the run put on it
            // (it was made empty by the set-up) and nothing may stay held.
            if books.certain {
                balances += 1
                let state = try await session.account(id)
                let expected = books.expectedNet + expired
                if state.balance.micros != expected {
                    problems.append("\(id): the final balance is \(state.balance.micros) micro-credits, the plan's prices and the allowed calls make it \(expected)")
                }
                if state.held.micros != 0 {
                    problems.append("\(id): \(state.held.micros) micro-credits still held after every stream settled")
                }
            }
        }
        problems += try await session.auditProblems(ids).map { "audit: \($0)" }
        if problems.count > 20 {
            let more = problems.count - 20
            problems = Array(problems.prefix(20)) + ["... and \(more) more"]
        }
        return BooksCheck(accountsChecked: ids.count, entriesChecked: entries, uncertainCalls: uncertain, balancesChecked: balances, problems: problems)
    }
}
