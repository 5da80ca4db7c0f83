import ArgumentParser
import Foundation
import TollgateCore

/// A UTC date or date-time on the command line: 2026-12-31, 2026-12-31T18:00:00Z.
struct TimeArgument: ExpressibleByArgument, Sendable {
    let milliseconds: Int64

    init?(argument: String) {
        guard let value = Timestamp.parse(argument) else { return nil }
        milliseconds = value
    }

    static var defaultValueDescription: String { "a UTC date or date-time, e.g. 2026-12-31 or 2026-12-31T18:00:00Z" }
}

/// `--from` and `--to` of reports and breakdowns.
struct TimeRangeOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Start of the range (UTC date or date-time). Default: 30 days before --to.", valueName: "time"))
    var from: TimeArgument?
    @Option(help: ArgumentHelp("End of the range, exclusive. Default: now.", valueName: "time"))
    var to: TimeArgument?

    var range: (Int64, Int64) {
        let end = to?.milliseconds ?? Int64(Date().timeIntervalSince1970 * 1000)
        return (from?.milliseconds ?? end - 30 * 86_400_000, end)
    }
}

struct CouponCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coupon",
        abstract: "Create coupon codes, or redeem one on an account.",
        subcommands: [Create.self, Redeem.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a batch of unique coupon codes (stored only hashed: this is the only time they are shown).")
        @Option(help: "Credits each code gives, e.g. 5.") var amount: String
        @Option(help: "How many codes.") var count: Int = 1
        @Option(help: "How many accounts may redeem each code.") var maxRedemptions: Int = 1
        @Option(help: "Until when the codes can be redeemed. Default: in 30 days.") var expires: TimeArgument?
        @Option(help: "Only this account may redeem them.") var account: String?
        @Option(help: "When the credit they give expires. Default: never.") var creditExpires: TimeArgument?
        @Option(name: .customLong("id"), help: "A request id: a retry with it prints the same codes and makes none.")
        var requestID: String?
        @Flag(help: "Print {\"codes\": [...], ...} as JSON.") var json = false
        @OptionGroup var options: EngineOptions
        @OptionGroup var secret: CouponSecretOptions

        func run() async throws {
            if requestID != nil, expires == nil {
                throw ValidationError("--id needs --expires: the default expiry moves with time, so a retry would ask for other coupons")
            }
            let money = try Money(parsing: amount)
            let bound = try account.map { try AccountID($0) }
            let until = expires?.milliseconds ?? Int64(Date().timeIntervalSince1970 * 1000) + 30 * 86_400_000
            let creditUntil = creditExpires?.milliseconds
            let engine = try await secret.engine(options)
            let batch = try await engine.createCoupons(
                amount: money, count: count, maxRedemptions: maxRedemptions, expires: until, account: bound, creditExpires: creditUntil,
                requestID: try requestID.map { try RequestID($0) })
            if json {
                Output.json(batch)
            } else {
                batch.codes.forEach { print($0) }
                FileHandle.standardError.write(Data("\(batch.codes.count) codes worth \(batch.amount), \(batch.maxRedemptions) redemption(s) each, until \(Timestamp.iso8601(milliseconds: batch.expires))\n".utf8))
            }
        }
    }

    struct Redeem: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Redeem a coupon code on an account; exits 3 when refused (invalid, expired, exhausted, already_redeemed).")
        @Argument(help: "The account's id.") var id: String
        @Argument(help: "The coupon code.") var code: String
        @Option(name: .customLong("id"), help: "A request id: a retry with it replays the first answer instead of already_redeemed.")
        var requestID: String?
        @Flag(help: "Print the decision as JSON.") var json = false
        @OptionGroup var options: EngineOptions
        @OptionGroup var secret: CouponSecretOptions

        func run() async throws {
            let account = try AccountID(id)
            let engine = try await secret.engine(options)
            let redemption = try await engine.redeemCoupon(account, code: code, requestID: try requestID.map { try RequestID($0) })
            let expiry = redemption.creditExpires.map { ", expiring \(Timestamp.iso8601(milliseconds: $0))" } ?? ""
            try Output.decision(redemption.decision, json: json) { decision, account in
                "redeemed: \(decision.amount) of promotional credit\(expiry); balance \(account.balance) (promotional \(account.promotional))"
            }
        }
    }
}

struct GrantCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grant",
        abstract: "Grant promotional credit that expires: spent before paid credit, gone at --expires with an expire entry.")
    @Argument(help: "The account's id.") var id: String
    @Argument(help: "Credits to grant, e.g. 5.") var amount: String
    @Option(help: "When the credit expires.") var expires: TimeArgument
    @Option(name: .customLong("id"), help: "The request id: repeating it changes nothing.") var requestID: String
    @Flag(help: "Print the decision as JSON.") var json = false
    @OptionGroup var options: EngineOptions

    func run() async throws {
        let account = try AccountID(id)
        let money = try Money(parsing: amount)
        let request = try RequestID(requestID)
        let until = expires.milliseconds
        let engine = try await options.engine()
        let decision = try await engine.credit(account, amount: money, kind: .grant, expires: until, requestID: request)
        try Output.decision(decision, json: json) { decision, account in
            "granted \(decision.amount) until \(Timestamp.iso8601(milliseconds: until)); balance \(account.balance) (promotional \(account.promotional))"
        }
    }
}

struct DepositsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deposits",
        abstract: "List an account's crypto deposits, newest first, with their status.")
    @Argument(help: "The account's id.") var id: String
    @Flag(help: "Print a JSON array.") var json = false
    @OptionGroup var options: EngineOptions

    func run() async throws {
        let account = try AccountID(id)
        let deposits = try await options.engine().deposits(account)
        if json {
            Output.json(deposits)
            return
        }
        if deposits.isEmpty { print("no deposits") }
        for deposit in deposits {
            let credited = deposit.credited.map { " credited=\($0)" } ?? ""
            let flag = deposit.flagged ? " FLAGGED(amount differs)" : ""
            print("\(deposit.id)  \(Timestamp.iso8601(milliseconds: deposit.created))  \(deposit.status.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)) \(deposit.tokenAmount) \(deposit.token) via \(deposit.provider)\(credited)\(flag)")
        }
    }
}

struct UsageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "usage",
        abstract: "Usage breakdown over a time range, from the aggregates (cost O(groups)).")
    @Argument(help: "The account's id.") var id: String
    @OptionGroup var range: TimeRangeOptions
    @Option(help: "Group by any of meter, model, key and one of hour, day, month.") var by: String = "meter"
    @Flag(help: "Print CSV.") var csv = false
    @Flag(help: "Print JSON.") var json = false
    @OptionGroup var options: EngineOptions

    func run() async throws {
        let account = try AccountID(id)
        let grouping = try UsageGrouping(parsing: by)
        let (from, to) = range.range
        let usage = try await options.engine().usage(account, from: from, to: to, by: grouping)
        if csv {
            print(usage.csv(), terminator: "")
        } else if json {
            Output.json(usage)
        } else {
            print("usage of \(account) from \(Timestamp.iso8601(milliseconds: usage.from)) to \(Timestamp.iso8601(milliseconds: usage.to)) by \(grouping)")
            for group in usage.groups {
                let names = [group.period, group.meter, group.model, group.key].compactMap { $0 }.map { $0.isEmpty ? "-" : $0 }
                print("  \(names.joined(separator: "  "))  amount=\(group.amount) quantity=\(group.quantity)")
            }
            print("total amount=\(usage.totalAmount) quantity=\(usage.totalQuantity)")
        }
    }
}

struct StatementCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "An account's transactions over a range with opening and closing balances that reconcile.")
    @Argument(help: "The account's id.") var id: String
    @OptionGroup var range: TimeRangeOptions
    @Flag(help: "Write CSV (header row, one row per entry, opening balance and totals rows).") var csv = false
    @OptionGroup var options: EngineOptions

    func run() async throws {
        let account = try AccountID(id)
        let (from, to) = range.range
        let engine = try await options.engine()
        let report = try await engine.transactionReport(account, from: from, to: to)
        var totals = TransactionReport.Totals(opening: report.openingBalance)
        let output = FileHandle.standardOutput
        if csv { output.write(Data(report.csvHead().utf8)) }
        try await engine.forEachLedgerPage(of: report) { page in
            var chunk = ""
            for entry in page {
                if csv {
                    chunk += TransactionReport.csvRow(entry)
                } else {
                    chunk += "\(entry.id)  \(Timestamp.iso8601(milliseconds: entry.time))  \(entry.kind.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0)) amount=\(entry.amount) balance=\(entry.balance)\n"
                }
                try totals.add(entry)
            }
            output.write(Data(chunk.utf8))
        }
        if csv {
            output.write(Data(report.csvTail(totals).utf8))
        } else {
            let credits = Money(micros: totals.credits) ?? .zero, debits = Money(micros: totals.debits) ?? .zero
            print("opening \(report.openingBalance) + credits \(credits) - debits \(debits) = closing \(Money(micros: totals.closing) ?? .zero) (\(totals.entries) entries)")
        }
        if !totals.reconciles(opening: report.openingBalance) {
            Output.error("the report does not reconcile: run tollgate audit")
            throw CLIExit.failure
        }
    }
}

struct LedgerArchiveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "archive",
        abstract: "Export ledger entries older than --before to a JSON-lines file, then remove them from Redis, keeping a checkpoint so audit still balances.")
    @Option(help: "Archive entries before this time.") var before: TimeArgument
    @Option(help: ArgumentHelp("The file to append the entries to (JSON lines).", valueName: "file")) var to: String
    @Option(help: "Only this account (default: every account).") var account: String?
    @OptionGroup var options: EngineOptions

    func run() async throws {
        let engine = try await options.engine()
        var ids: [AccountID]
        if let account {
            ids = [try AccountID(account)]
        } else {
            ids = try await engine.accountIDs()
        }
        if !FileManager.default.fileExists(atPath: to) {
            guard FileManager.default.createFile(atPath: to, contents: nil) else {
                throw TollgateError(.invalidArgument, "cannot create \(to)")
            }
        }
        guard let file = FileHandle(forWritingAtPath: to) else { throw TollgateError(.invalidArgument, "cannot write \(to)") }
        defer { try? file.close() }
        try file.seekToEnd()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var total = 0
        for id in ids.sorted() {
            // If Redis refuses the trim (or anything fails), the file goes back to where this
            // account began, so a rerun never writes an entry twice.
            let start = try file.offset()
            let result: ArchiveResult
            do {
                result = try await engine.archiveLedger(id, before: before.milliseconds) { page in
                    var data = Data()
                    for entry in page {
                        data.append(try encoder.encode(ArchivedLedgerEntry(account: id, entry: entry)))
                        data.append(0x0A)
                    }
                    try file.write(contentsOf: data)
                    // Durable before Redis lets go of them.
                    try file.synchronize()
                }
            } catch {
                try? file.truncate(atOffset: start)
                try? file.synchronize()
                throw error
            }
            if result.entries > 0 { print("\(id): archived \(result.entries) entries up to \(result.lastEntryID ?? "")") }
            total += result.entries
        }
        print("archived \(total) entries from \(ids.count) account(s) to \(to)")
    }
}

