import ArgumentParser
import TollgateCore

extension CreditKind: ExpressibleByArgument {}

struct CreditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "credit",
        abstract: "Add credit to an account (a top-up, a grant, or an adjustment that may be negative).")
    @Argument(help: "The account's id.") var id: String
    @Argument(help: ArgumentHelp(
        "Credits to add, e.g. 10 or 0.5.",
        discussion: "Only an adjustment may be negative; put it after --: tollgate credit ID --kind adjustment --id REQ -- -0.5")) var amount: String
    @Option(name: .customLong("id"), help: "The request id: repeating it changes nothing.") var requestID: String
    @Option(help: "topup, grant or adjustment.") var kind: CreditKind = .topup
    @Flag(help: "Print the decision as JSON.") var json = false
    @OptionGroup var options: EngineOptions

    func run() async throws {
        let account = try AccountID(id)
        let money = try Money(parsing: amount, allowNegative: kind == .adjustment)
        let request = try RequestID(requestID)
        let decision = try await options.engine().credit(account, amount: money, kind: kind, requestID: request)
        try Output.decision(decision, json: json) { decision, account in
            "credited \(decision.amount) (\(kind.rawValue)) to \(account.id); balance \(account.balance), available \(account.available)"
        }
    }
}

struct DebitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "debit",
        abstract: "Debit an amount now; exits 3 when denied.")
    @Argument(help: "The account's id.") var id: String
    @Argument(help: "Credits to debit, e.g. 0.25.") var amount: String
    @Option(name: .customLong("id"), help: "The request id: repeating it changes nothing.") var requestID: String
    @Flag(help: "Print the decision as JSON.") var json = false
    @OptionGroup var options: EngineOptions

    func run() async throws {
        let account = try AccountID(id)
        let money = try Money(parsing: amount)
        let request = try RequestID(requestID)
        let decision = try await options.engine().debit(account, amount: money, requestID: request)
        try Output.decision(decision, json: json) { decision, account in
            "debited \(decision.amount) from \(account.id); balance \(account.balance), available \(account.available)"
        }
    }
}
