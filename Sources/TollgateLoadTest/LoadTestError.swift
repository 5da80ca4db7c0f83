/// Why a load test could not run, or found the books wrong.
public struct LoadTestError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A stable, machine-readable kind of failure.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        /// The code as printed, e.g. `unreachable`.
        public let rawValue: String
        init(_ rawValue: String) { self.rawValue = rawValue }

        /// A flag or setting is invalid.
        public static let invalidConfiguration = Code("invalid_configuration")
        /// The server or Redis could not be reached.
        public static let unreachable = Code("unreachable")
        /// A request failed: timeout, dropped connection, an HTTP error status, a Redis error.
        public static let requestFailed = Code("request_failed")
        /// The target answered something the load test cannot read.
        public static let unexpectedResponse = Code("unexpected_response")
        /// Setting up accounts, prices or keys failed.
        public static let setupFailed = Code("setup_failed")

        public var description: String { rawValue }
    }

    /// What kind of failure.
    public var code: Code
    /// What happened, for people.
    public var message: String

    /// Makes an error of `code` with a human message.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
