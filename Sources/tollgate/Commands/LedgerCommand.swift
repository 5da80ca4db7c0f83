import ArgumentParser
import TollgateCore

struct LedgerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ledger",
        abstract: "Show an account's ledger, newest first (tollgate ledger ID), or archive old entries.",
        subcommands: [LedgerShowCommand.self, LedgerArchiveCommand.self],
        defaultSubcommand: LedgerShowCommand.self)
}

struct LedgerShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show an account's ledger, newest first.")
    @Argument(help: "The account's id.") var id: String
    @Option(help: "How many entries (1 to 10000).") var limit: Int = 20
    @Option(help: "Continue after this entry id (from the previous page).") var cursor: String?
    @Flag(help: "Print a JSON array of entries.") var json = false
    @OptionGroup var options: EngineOptions

    func run() async throws {
        let page = try await options.engine().ledger(try AccountID(id), limit: limit, cursor: cursor)
        if json {
            Output.json(page.entries)
            return
        }
        for entry in page.entries {
            let time = Timestamp.iso8601(milliseconds: entry.time)
            let hold = entry.holdID.map { " hold=\($0)" } ?? ""
            print("\(entry.id)  \(time)  \(entry.kind.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0)) amount=\(entry.amount) balance=\(entry.balance) held=\(entry.held) request=\(entry.requestID)\(hold)")
        }
        if let next = page.nextCursor { print("more: --cursor \(next)") }
    }
}

struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Check every account's books: balance = sum of its ledger, held = open holds. Exits 1 on drift.")
    @Flag(help: "Print the report as JSON.") var json = false
    @OptionGroup var options: EngineOptions

    func run() async throws {
        let report = try await options.engine().audit()
        if json {
            Output.json(report)
        } else if report.isClean {
            print("clean: \(report.accounts.count) accounts, \(report.accounts.reduce(0) { $0 + $1.entries }) ledger entries checked")
        } else {
            print("DRIFT in \(report.drifting.count) of \(report.accounts.count) accounts:")
            for account in report.drifting {
                print("  \(account.account):")
                account.problems.forEach { print("    - \($0)") }
            }
        }
        if !report.isClean { throw CLIExit.failure }
    }
}

struct LuaCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lua",
        abstract: "Check that Redis runs exactly this build's Lua, and install it if not.")
    @Flag(help: "Only check; exit 1 if Redis runs different code.") var check = false
    @OptionGroup var options: EngineOptions

    func run() async throws {
        if check {
            let engine = try options.unpreparedEngine()
            let matches = try await engine.luaMatchesRepository()
            print(matches ? "Redis runs the Lua of this build (\(TollgateLua.files.joined(separator: ", ")))" : "Redis runs different Lua")
            if !matches { throw CLIExit.failure }
        } else {
            _ = try await options.engine()
            print("installed: Redis runs the Lua of this build (\(TollgateLua.files.joined(separator: ", ")))")
        }
    }
}
