import TollgateCore

/// Ends the process with a given status after the command has printed what it needs to.
struct CLIExit: Error {
    let code: Int32

    /// Allowed, or done.
    static let success = CLIExit(code: 0)
    /// Any error that is not bad input.
    static let failure = CLIExit(code: 1)
    /// Bad input: malformed amounts, ids, flags.
    static let badInput = CLIExit(code: 2)
    /// The engine refused the call (a denial).
    static let denied = CLIExit(code: 3)

    static func code(for error: TollgateError) -> Int32 {
        switch error.code {
        case .invalidAmount, .invalidArgument: return badInput.code
        default: return failure.code
        }
    }
}
