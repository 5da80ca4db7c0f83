import ArgumentParser
import TollgateCore

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Create, list and revoke account-scoped tokens (dashboards, an account holder's own calls).",
        discussion: """
            An account token reads and acts on its own account only. A revoked token is refused \
            from the next request on, on every server; a live stream opened with it ends within \
            a second.
            """,
        subcommands: [Create.self, List.self, Revoke.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a token for an account and print it (shown only this once).")
        @Argument(help: "The account.") var account: String
        @Flag(help: "Print {\"account\": ..., \"token_id\": ..., \"token\": ...}.") var json = false
        @OptionGroup var options: EngineOptions

        func run() async throws {
            let created = try await options.engine().createAccountToken(for: try AccountID(account))
            if json {
                Output.json(created)
            } else {
                print("token id  \(created.tokenID)\ntoken     \(created.token)\n(the token is not stored and will not be shown again)")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List an account's tokens by id (never the tokens).")
        @Argument(help: "The account.") var account: String
        @Flag(help: "Print a JSON array.") var json = false
        @OptionGroup var options: EngineOptions

        func run() async throws {
            let tokens = try await options.engine().accountTokens(of: try AccountID(account))
            if json {
                Output.json(tokens)
                return
            }
            for token in tokens {
                print("\(token.tokenID)  created \(Timestamp.iso8601(milliseconds: token.created))")
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke an account's token by its id, by its value (--token, for one found leaked), or all of them (--all).")
        @Argument(help: "The account.") var account: String
        @Argument(help: "The token id (tok_...).") var tokenID: String?
        @Option(help: "The token itself: its id is computed here, the token is not sent anywhere.") var token: String?
        @Flag(help: "Revoke every token of the account.") var all = false
        @OptionGroup var options: EngineOptions

        func validate() throws {
            guard [tokenID != nil, token != nil, all].filter({ $0 }).count == 1 else {
                throw ValidationError("name exactly one of a token id, --token and --all")
            }
        }

        func run() async throws {
            let id = try AccountID(account)
            let engine = try await options.engine()
            if all {
                print("revoked \(try await engine.revokeAccountTokens(of: id)) tokens of \(id)")
                return
            }
            let tokenID = tokenID ?? Engine.accountTokenID(of: token ?? "")
            try await engine.revokeAccountToken(tokenID, of: id)
            print("revoked \(tokenID)")
        }
    }
}
