import ArgumentParser
import Foundation
import TollgateCore

// The entry point maps every failure to the documented exit codes:
// 0 done/allowed, 1 other errors, 2 bad input, 3 denied.
func runAsync<Command: AsyncParsableCommand>(_ command: inout Command) async throws {
    try await command.run()
}

do {
    var command = try TollgateCommand.parseAsRoot()
    if var asyncCommand = command as? any AsyncParsableCommand {
        try await runAsync(&asyncCommand)
    } else {
        try command.run()
    }
} catch let exit as CLIExit {
    Foundation.exit(exit.code)
} catch let error as TollgateError {
    Output.error("\(error.code): \(error.message)")
    Foundation.exit(CLIExit.code(for: error))
} catch {
    let code = TollgateCommand.exitCode(for: error)
    if code == .success {
        print(TollgateCommand.fullMessage(for: error))
        Foundation.exit(0)
    }
    // Output.error says "error:" itself.
    let message = TollgateCommand.fullMessage(for: error)
    Output.error(message.hasPrefix("Error: ") ? String(message.dropFirst("Error: ".count)) : message)
    Foundation.exit(CLIExit.badInput.code)
}
