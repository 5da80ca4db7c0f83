import Foundation

/// Runs a program to completion and captures what it printed, for end-to-end tests.
public struct CommandResult: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String
}

public enum CommandRunner {
    /// The directory of the running test bundle, where SwiftPM also puts the package's executables.
    public static var productsDirectory: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    }

    /// A built executable of this package, e.g. `tollgate`.
    public static func product(_ name: String) -> URL {
        productsDirectory.appendingPathComponent(name)
    }

    /// Runs `executable` with `arguments` and extra `environment` (inherited `TOLLGATE_*`
    /// variables are dropped) to its end, `stdin` as its input; killed after `timeout`, which
    /// only catches a hang.
    public static func run(
        _ executable: URL, _ arguments: [String], environment: [String: String] = [:], stdin: String? = nil,
        timeout: Duration = .seconds(300)
    ) async throws -> CommandResult {
        let process = try TestProcess(executable, arguments, environment: environment, stdin: stdin.map { Array($0.utf8) })
        let status: Int32
        switch try await process.waitForExit(timeout: timeout) {
        case .exited(let code): status = code
        // As a shell reports it.
        case .signaled(let signal): status = 128 + signal
        }
        return CommandResult(status: status, stdout: process.stdout, stderr: process.stderr)
    }
}
