import ArgumentParser
import TollgateCore

struct KeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key",
        abstract: "Create, list and revoke API keys.",
        subcommands: [Create.self, List.self, Revoke.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create an API key for an account and print its secret (shown only this once).")
        @Argument(help: "The account.") var account: String
        @Flag(help: "Print {\"key_id\": ..., \"secret\": ...}.") var json = false
        @OptionGroup var options: EngineOptions

        func run() async throws {
            let created = try await options.engine().createKey(for: try AccountID(account))
            if json {
                Output.json(created)
            } else {
                print("key id  \(created.keyID)\nsecret  \(created.secret)\n(the secret is not stored and will not be shown again)")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List an account's API keys (never their secrets).")
        @Argument(help: "The account.") var account: String
        @Flag(help: "Print a JSON array.") var json = false
        @OptionGroup var options: EngineOptions

        func run() async throws {
            let keys = try await options.engine().keys(of: try AccountID(account))
            if json {
                Output.json(keys)
                return
            }
            for key in keys {
                let limits = key.limits.sorted { $0.key.rawValue < $1.key.rawValue }
                    .map { "\($0.key.displayName)=\($0.key.isAmount ? (Money(micros: $0.value)?.description ?? "?") : String($0.value))" }
                print("\(key.keyID)  \(key.status)  created \(Timestamp.iso8601(milliseconds: key.created))" + (limits.isEmpty ? "" : "  " + limits.joined(separator: " ")))
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke an API key; it is refused from the next call on.")
        @Argument(help: "The key id (key_...).") var keyID: String
        @OptionGroup var options: EngineOptions

        func run() async throws {
            let key = try KeyID(keyID)
            try await options.engine().revokeKey(key)
            print("revoked \(key)")
        }
    }
}
