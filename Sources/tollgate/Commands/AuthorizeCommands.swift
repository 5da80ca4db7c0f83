import ArgumentParser
import TollgateCore

/// `--usage METER[@MODEL]=QTY,...` shared by authorize, report and settle.
struct UsageOption: ParsableArguments {
    @Option(help: ArgumentHelp("Usage, e.g. tokens.input@m=1200,tokens.output@m=300 or api_call=1.", valueName: "usage"))
    var usage: String?

    func items(required: Bool) throws -> [UsageItem]? {
        guard let usage else {
            if required { throw ValidationError("--usage is required") }
            return nil
        }
        return try UsageItem.parseList(usage)
    }
}

struct AuthorizeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "authorize",
        abstract: "Decide a gateway call in one atomic step: limits, caps, balance; debit or hold. Exits 3 when denied.")
    @Option(help: "The end user's API key secret.") var key: String?
    @Option(help: "The account (instead of a key).") var account: String?
    @OptionGroup var usage: UsageOption
    @Option(name: .customLong("id"), help: "The request id: repeating it changes nothing.") var requestID: String
    @Flag(help: "Reserve the usage as a hold (report and settle it later) instead of debiting now.") var hold = false
    @Option(help: "The hold's TTL.") var ttl: DurationArgument = DurationArgument(.seconds(30))
    @Flag(help: "Print the decision as JSON.") var json = false
    @OptionGroup var options: EngineOptions

    func validate() throws {
        guard (key == nil) != (account == nil) else { throw ValidationError("name exactly one of --key and --account") }
    }

    func run() async throws {
        let target: AuthorizeTarget
        if let key {
            target = .key(secret: key)
        } else {
            target = .account(try AccountID(account ?? ""))
        }
        let items = try usage.items(required: true) ?? []
        let request = try RequestID(requestID)
        let engine = try await options.engine()
        let decision = try await engine.authorize(target, usage: items, requestID: request, mode: hold ? .hold(ttl: ttl.duration) : .debit)
        try Output.decision(decision, json: json) { decision, account in
            if let holdID = decision.holdID { return holdID.description }
            return "allowed: cost \(decision.amount); balance \(account.balance), available \(account.available)"
        }
    }
}

/// What report and settle both take: the hold, its usage, the request id.
struct HoldFollowUpOptions: ParsableArguments {
    @Argument(help: "The hold id.") var holdID: String
    @OptionGroup var usage: UsageOption
    @Option(name: .customLong("id"), help: "The request id: repeating it changes nothing.") var requestID: String
    @Flag(help: "Print the decision as JSON.") var json = false
    @OptionGroup var options: EngineOptions

    /// The hold, the usage (nil when none was given), the request id and a ready engine.
    func resolve(usageRequired: Bool) async throws -> (HoldID, [UsageItem]?, RequestID, Engine) {
        let hold = try HoldID(parsing: holdID)
        let items = try usage.items(required: usageRequired)
        let request = try RequestID(requestID)
        return (hold, items, request, try await options.engine())
    }
}

struct BatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batch",
        abstract: "Charge a usage batch against a hold; exits 3 when denied (cut the stream).")
    @OptionGroup var followUp: HoldFollowUpOptions

    func run() async throws {
        let (hold, items, request, engine) = try await followUp.resolve(usageRequired: true)
        let decision = try await engine.report(hold, usage: items ?? [], requestID: request)
        try Output.decision(decision, json: followUp.json) { decision, account in
            "charged \(decision.amount) (\(decision.capturedOnHold ?? .zero) on the hold); balance \(account.balance), held \(account.held), available \(account.available)"
        }
    }
}

struct SettleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "settle",
        abstract: "Settle a hold on the call's total final usage (or on what was reported) and release the rest.")
    @OptionGroup var followUp: HoldFollowUpOptions

    func run() async throws {
        let (hold, items, request, engine) = try await followUp.resolve(usageRequired: false)
        let decision = try await engine.settle(hold, usage: items, requestID: request)
        try Output.decision(decision, json: followUp.json) { decision, account in
            "settled: \(decision.amount) charged in all; balance \(account.balance), held \(account.held), available \(account.available)"
        }
    }
}
