import ArgumentParser
import TollgateCore

struct HoldCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hold",
        abstract: "Reserve credit for a call in flight; prints the hold id. Exits 3 when denied.",
        discussion: "Capture against the hold as usage arrives, then release it. A hold not released by its TTL expires and frees what it still reserves.")
    @Argument(help: "The account's id.") var id: String
    @Argument(help: "Credits to reserve.") var amount: String
    @Option(help: "How long the hold lives, e.g. 30s (at most 7 days).") var ttl: DurationArgument = DurationArgument(.seconds(30))
    @Option(name: .customLong("id"), help: "The request id: repeating it changes nothing.") var requestID: String
    @Flag(help: "Print the decision as JSON.") var json = false
    @OptionGroup var options: EngineOptions

    func run() async throws {
        let account = try AccountID(id)
        let money = try Money(parsing: amount)
        let request = try RequestID(requestID)
        let decision = try await options.engine().hold(account, amount: money, ttl: ttl.duration, requestID: request)
        try Output.decision(decision, json: json) { decision, _ in decision.holdID?.description ?? "" }
    }
}

struct CaptureCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capture",
        abstract: "Charge an amount against a hold (beyond it, from available credit). Exits 3 when denied.")
    @Argument(help: "The hold id printed by 'tollgate hold'.") var holdID: String
    @Argument(help: "Credits to charge.") var amount: String
    @Option(name: .customLong("id"), help: "The request id: repeating it changes nothing.") var requestID: String
    @Flag(help: "Print the decision as JSON.") var json = false
    @OptionGroup var options: EngineOptions

    func run() async throws {
        let hold = try HoldID(parsing: holdID)
        let money = try Money(parsing: amount)
        let request = try RequestID(requestID)
        let decision = try await options.engine().capture(hold, amount: money, requestID: request)
        try Output.decision(decision, json: json) { decision, account in
            "captured \(decision.amount) on \(hold) (\(decision.capturedOnHold ?? .zero) in all); balance \(account.balance), held \(account.held), available \(account.available)"
        }
    }
}

struct ReleaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "release",
        abstract: "Close a hold and free what it still reserves.")
    @Argument(help: "The hold id printed by 'tollgate hold'.") var holdID: String
    @Option(name: .customLong("id"), help: "The request id (default: release:HOLD_ID).") var requestID: String?
    @Flag(help: "Print the decision as JSON.") var json = false
    @OptionGroup var options: EngineOptions

    func run() async throws {
        let hold = try HoldID(parsing: holdID)
        let request = try RequestID(requestID ?? "release:\(holdID)")
        let decision = try await options.engine().release(hold, requestID: request)
        try Output.decision(decision, json: json) { decision, account in
            "released \(decision.amount) from \(hold) (\(decision.capturedOnHold ?? .zero) captured); held \(account.held), available \(account.available)"
        }
    }
}
