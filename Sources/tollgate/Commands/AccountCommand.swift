import ArgumentParser
import TollgateCore

struct AccountCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "account",
        abstract: "Create, show, list, freeze and unfreeze accounts.",
        subcommands: [Create.self, Show.self, List.self, Freeze.self, Unfreeze.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an account with a zero balance.")
        @Argument(help: "The new account's id.") var id: String
        @Option(help: "How far available credit may go below zero, in credits.") var creditLimit: String = "0"
        @Flag(help: "Print the account as JSON.") var json = false
        @OptionGroup var options: EngineOptions

        func run() async throws {
            let id = try AccountID(id)
            let limit = try Money(parsing: creditLimit)
            let account = try await options.engine().createAccount(id, creditLimit: limit)
            if json { Output.json(account) } else { print("created account \(account.id) (credit limit \(account.creditLimit))") }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show an account's balance, held and available credit.")
        @Argument(help: "The account's id.") var id: String
        @Flag(help: "Print the account as JSON.") var json = false
        @OptionGroup var options: EngineOptions

        func run() async throws {
            let account = try await options.engine().account(try AccountID(id))
            if json { Output.json(account) } else { print(Output.account(account)) }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List every account id.")
        @Flag(help: "Print a JSON array.") var json = false
        @OptionGroup var options: EngineOptions

        func run() async throws {
            let ids = try await options.engine().accountIDs().sorted().map(\.rawValue)
            if json { Output.json(ids) } else { ids.forEach { print($0) } }
        }
    }

    struct Freeze: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Refuse all spending on an account until it is unfrozen.")
        @Argument(help: "The account's id.") var id: String
        @OptionGroup var options: EngineOptions

        func run() async throws {
            let account = try await options.engine().freeze(try AccountID(id))
            print("account \(account.id) is \(account.status.rawValue)")
        }
    }

    struct Unfreeze: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Let a frozen account spend again.")
        @Argument(help: "The account's id.") var id: String
        @OptionGroup var options: EngineOptions

        func run() async throws {
            let account = try await options.engine().unfreeze(try AccountID(id))
            print("account \(account.id) is \(account.status.rawValue)")
        }
    }
}
