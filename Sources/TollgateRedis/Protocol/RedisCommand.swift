/// One Redis command, encoded as a RESP array of bulk strings when it is built.
///
/// Encoding happens in the caller's task, so the connection's I/O thread only copies bytes.
/// Arguments may hold any bytes.
public struct RedisCommand: Sendable {
    /// The arguments, encoded as consecutive RESP bulk strings.
    private(set) var body: [UInt8] = []
    /// How many arguments `body` holds.
    public private(set) var argumentCount = 0

    /// Starts a command with its name, for example `RedisCommand("GET")`.
    public init(_ name: String) {
        body.reserveCapacity(64)
        append(name)
    }

    /// A command from its words, for example `RedisCommand(["SET", "k", "v"])`.
    public init(_ words: [String]) {
        precondition(!words.isEmpty, "a Redis command needs a name")
        for word in words { append(word) }
    }

    /// Appends a text argument.
    public mutating func append(_ argument: String) {
        var argument = argument
        argument.withUTF8 { appendBulk($0) }
    }

    /// Appends a binary argument.
    public mutating func append(_ argument: [UInt8]) {
        argument.withUnsafeBufferPointer { appendBulk($0) }
    }

    /// Appends an integer argument in decimal.
    public mutating func append(_ argument: Int64) {
        append(String(argument))
    }

    /// Appends an integer argument in decimal.
    public mutating func append(_ argument: Int) {
        append(String(argument))
    }

    private mutating func appendBulk(_ bytes: UnsafeBufferPointer<UInt8>) {
        body.append(UInt8(ascii: "$"))
        appendDecimal(bytes.count)
        body.append(contentsOf: bytes)
        body.append(UInt8(ascii: "\r"))
        body.append(UInt8(ascii: "\n"))
        argumentCount += 1
    }

    private mutating func appendDecimal(_ value: Int) {
        body.append(contentsOf: String(value).utf8)
        body.append(UInt8(ascii: "\r"))
        body.append(UInt8(ascii: "\n"))
    }

    /// The RESP array header (`*N\r\n`) that precedes `body` on the wire.
    var header: [UInt8] {
        Array("*\(argumentCount)\r\n".utf8)
    }

    /// The whole command as sent on the wire.
    public var encoded: [UInt8] { header + body }
}

extension RedisCommand {
    /// `FCALL function numkeys keys... arguments...`
    public static func fcall(_ function: String, keys: [String], arguments: [String]) -> RedisCommand {
        var command = RedisCommand("FCALL")
        command.append(function)
        command.append(keys.count)
        for key in keys { command.append(key) }
        for argument in arguments { command.append(argument) }
        return command
    }
}
