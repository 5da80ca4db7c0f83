/// An error talking to Redis: what went wrong (`code`) and a message for people.
public struct RedisError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure this is. Extensible: match on the static members.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case invalidAddress = "invalid_address"
            case connectionRefused = "connection_refused"
            case timeout
            case connectionClosed = "connection_closed"
            case protocolError = "protocol_error"
            case serverError = "server_error"
            case clientClosed = "client_closed"
            case unexpectedReply = "unexpected_reply"
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The address could not be parsed.
        public static let invalidAddress = Code(.invalidAddress)
        /// Nothing accepted the connection (refused, no such socket, unknown host).
        public static let connectionRefused = Code(.connectionRefused)
        /// Connecting, sending or waiting for a reply took longer than the configured timeout.
        public static let timeout = Code(.timeout)
        /// The connection broke while a command was in flight; its outcome is unknown.
        public static let connectionClosed = Code(.connectionClosed)
        /// Redis sent bytes that are not valid RESP.
        public static let protocolError = Code(.protocolError)
        /// Redis answered with an error reply; `message` holds it.
        public static let serverError = Code(.serverError)
        /// The client was shut down.
        public static let clientClosed = Code(.clientClosed)
        /// The reply did not have the expected shape.
        public static let unexpectedReply = Code(.unexpectedReply)

        public var description: String { base.rawValue }
    }

    /// What kind of failure this is.
    public var code: Code
    /// A message for people; for `serverError`, Redis' own error text.
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "redis \(code): \(message)" }

    /// Whether retrying on a fresh connection could succeed (the server may be back).
    public var isConnectivity: Bool {
        code == .connectionRefused || code == .timeout || code == .connectionClosed
    }
}
