/// A reply from Redis as a Swift value: every RESP2 type, bulk strings binary-safe.
public enum RESPValue: Sendable, Hashable {
    /// A status reply such as `OK` (`+OK`).
    case simpleString(String)
    /// An error reply (`-ERR ...`); inside arrays (for example `EXEC` results) errors are values.
    case error(String)
    /// An integer reply (`:42`).
    case integer(Int64)
    /// A bulk string (`$3\r\nabc`), any bytes.
    case bulkString([UInt8])
    /// A null bulk string or null array.
    case null
    /// An array reply, possibly nested.
    case array([RESPValue])
}

extension RESPValue {
    /// The text of a bulk or simple string, decoded as UTF-8; `nil` for other types.
    public var string: String? {
        switch self {
        case .simpleString(let text): return text
        case .bulkString(let bytes): return String(decoding: bytes, as: UTF8.self)
        default: return nil
        }
    }

    /// The bytes of a bulk or simple string; `nil` for other types.
    public var bytes: [UInt8]? {
        switch self {
        case .simpleString(let text): return Array(text.utf8)
        case .bulkString(let bytes): return bytes
        default: return nil
        }
    }

    /// An integer reply, or a string that holds a decimal integer (Redis often answers either way).
    public var int64: Int64? {
        switch self {
        case .integer(let value): return value
        case .bulkString, .simpleString: return string.flatMap { Int64($0) }
        default: return nil
        }
    }

    /// The elements of an array reply; `nil` for other types.
    public var array: [RESPValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    /// Whether this is a null reply.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }
}

extension RESPValue: CustomStringConvertible {
    public var description: String {
        switch self {
        case .simpleString(let text): return text
        case .error(let text): return "(error) \(text)"
        case .integer(let value): return "(integer) \(value)"
        case .bulkString: return "\"\(string ?? "")\""
        case .null: return "(nil)"
        case .array(let elements): return "[" + elements.map(\.description).joined(separator: ", ") + "]"
        }
    }
}
