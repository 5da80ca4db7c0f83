/// A stable, machine-readable error code of one family of errors (`Family` is the error type
/// it belongs to), written as-is in JSON, CLI output and logs. Families declare their codes as
/// static members in `extension ErrorCode where Family == ...`.
public struct ErrorCode<Family>: Sendable, Hashable, CustomStringConvertible {
    /// The code as written, e.g. `account_not_found`.
    public let rawValue: String

    public init(_ rawValue: String) { self.rawValue = rawValue }

    public var description: String { rawValue }
}

/// An error with a stable `code` for programs and a `message` for people: the one shape of
/// every Tollgate error type.
public protocol CodedError: Error, Sendable, Hashable, CustomStringConvertible {
    var code: ErrorCode<Self> { get }
    var message: String { get }
}

extension CodedError {
    public var description: String { "\(code): \(message)" }
}
