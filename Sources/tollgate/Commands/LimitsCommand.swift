import ArgumentParser
import TollgateCore

struct LimitsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "limits",
        abstract: "Set limits on an account or an API key.",
        subcommands: [Set.self]
    )

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set (or with 0, remove) limits on an account or an API key.",
            discussion: """
                Request rates use GCRA with a burst that defaults to the limit: --rpm 5 admits 5 at \
                once, then one every 12 s. Token rate counts the tokens.* meters of each call. Caps \
                are credits per UTC hour, day, month, or in all. A value of 0 removes that limit.
                """)
        @Option(help: "The account.") var account: String?
        @Option(help: "The API key id.") var key: String?
        @Option(help: "Requests per second.") var rps: Int64?
        @Option(help: "Requests per minute.") var rpm: Int64?
        @Option(help: "Requests per hour.") var rph: Int64?
        @Option(help: "How many requests each request-rate limit admits at once.") var burst: Int64?
        @Option(help: "Tokens per minute.") var tpm: Int64?
        @Option(help: "Open holds (calls in flight) at once.") var concurrency: Int64?
        @Option(help: "Credits per UTC hour.") var hourlyCap: String?
        @Option(help: "Credits per UTC day.") var dailyCap: String?
        @Option(help: "Credits per UTC month.") var monthlyCap: String?
        @Option(help: "Credits in all.") var lifetimeCap: String?
        @OptionGroup var options: EngineOptions

        func validate() throws {
            guard (account == nil) != (key == nil) else {
                throw ValidationError("name exactly one of --account and --key")
            }
        }

        func run() async throws {
            let update = try LimitsUpdate(
                counts: [.rps: rps, .rpm: rpm, .rph: rph, .burst: burst, .tpm: tpm, .concurrency: concurrency],
                caps: [.hourlyCap: hourlyCap, .dailyCap: dailyCap, .monthlyCap: monthlyCap, .lifetimeCap: lifetimeCap])
            let scope: LimitScope
            if let account {
                scope = .account(try AccountID(account))
            } else {
                scope = .key(try KeyID(key ?? ""))
            }
            try await options.engine().setLimits(scope, update)
            print("limits set on \(account.map { "account \($0)" } ?? "key \(key ?? "")")")
        }
    }
}
