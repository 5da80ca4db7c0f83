import Foundation
import TollgateCore

/// Printing for the CLI: JSON to stdout, errors to stderr.
enum Output {
    static func json(_ value: some Encodable) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            let data = try encoder.encode(value)
            print(String(decoding: data, as: UTF8.self))
        } catch {
            self.error("cannot encode JSON: \(error)")
        }
    }

    static func error(_ message: String) {
        FileHandle.standardError.write(Data("error: \(message)\n".utf8))
    }

    /// Prints a decision (as JSON or a line of text) and ends with 0 (allowed) or 3 (denied).
    static func decision(_ decision: Decision, json: Bool, describe: (Decision, AccountState) -> String) throws -> Never {
        if json {
            Output.json(decision)
        } else if decision.allowed, let account = decision.account {
            print(describe(decision, account) + (decision.replayed ? " (replayed: this request id was already applied)" : ""))
        } else {
            var line = "denied: " + (decision.reason?.explanation ?? "denied")
            if let retry = decision.retryAfterMilliseconds { line += "; retry after \(retry) ms" }
            if let account = decision.account {
                line += " (available \(account.available), credit limit \(account.creditLimit))"
            }
            print(line)
        }
        throw decision.allowed ? CLIExit.success : CLIExit.denied
    }

    static func account(_ account: AccountState) -> String {
        """
        account       \(account.id)
        status        \(account.status.rawValue)
        balance       \(account.balance)
        held          \(account.held)
        available     \(account.available)
        credit limit  \(account.creditLimit)
        """
    }
}
