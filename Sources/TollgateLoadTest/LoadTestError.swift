import TollgateCore

/// Why a load test could not run, or found the books wrong.
public struct LoadTestError: CodedError {
    /// A stable, machine-readable error code.
    public typealias Code = ErrorCode<LoadTestError>

    /// What kind of failure.
    public var code: Code
    /// What happened, for people.
    public var message: String

    /// Makes an error of `code` with a human message.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
}

extension ErrorCode where Family == LoadTestError {
    /// A flag or setting is invalid.
    public static var invalidConfiguration: Self { Self("invalid_configuration") }
    /// The server or Redis could not be reached.
    public static var unreachable: Self { Self("unreachable") }
    /// A request failed: timeout, dropped connection, an HTTP error status, a Redis error.
    public static var requestFailed: Self { Self("request_failed") }
    /// The target answered something the load test cannot read.
    public static var unexpectedResponse: Self { Self("unexpected_response") }
    /// Setting up accounts, prices or keys failed.
    public static var setupFailed: Self { Self("setup_failed") }
}
