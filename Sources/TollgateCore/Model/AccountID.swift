/// An account's id: 1 to 256 bytes, any bytes. Keys built from it are always safe (I7).
public struct AccountID: ByteIdentifier, Sendable, CustomStringConvertible {
    /// The id as given.
    public let rawValue: String

    /// The longest id, in UTF-8 bytes.
    public static let maximumLength = 256

    /// Checks the length; any bytes are allowed.
    public init(_ rawValue: String) throws(TollgateError) {
        let length = rawValue.utf8.count
        guard length > 0 else { throw TollgateError(.invalidArgument, "an account id must not be empty") }
        guard length <= Self.maximumLength else {
            throw TollgateError(.invalidArgument, "an account id is at most \(Self.maximumLength) bytes (got \(length))")
        }
        self.rawValue = rawValue
    }

    public var description: String { rawValue }
}

/// A caller's idempotency id for one mutation (I3): 1 to 256 bytes.
public struct RequestID: ByteIdentifier, Sendable, CustomStringConvertible {
    /// The id as given.
    public let rawValue: String

    /// Checks the length; any bytes are allowed.
    public init(_ rawValue: String) throws(TollgateError) {
        let length = rawValue.utf8.count
        guard length > 0, length <= 256 else {
            throw TollgateError(.invalidArgument, "a request id must be 1 to 256 bytes (got \(length))")
        }
        self.rawValue = rawValue
    }

    public var description: String { rawValue }
}
