/// A parsed JSON value that keeps what signature checks need and `JSONDecoder` loses: numbers as
/// their literal text (never a `Double`), object members in order, and the raw text of every
/// member's value.
///
/// Strict RFC 8259: no comments, no trailing commas, valid UTF-8, no duplicate names (a body that
/// names a field twice could mean one thing to the verifier and another to its reader), nesting
/// at most 64 deep.
enum JSONValue: Sendable, Hashable {
    case object([JSONMember])
    case array([JSONValue])
    case string(String)
    /// The number literal exactly as written, such as `0.1819` or `1e-7`.
    case number(String)
    case bool(Bool)
    case null

    /// The member named `name` of an object.
    subscript(name: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.name == name }?.value
    }

    /// A string's value, or a number's literal text.
    var scalarText: String? {
        switch self {
        case .string(let text), .number(let text): text
        default: nil
        }
    }

    /// A string's value.
    var stringValue: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    /// Parses a whole document; `nil` if it is not exactly one valid JSON value.
    static func parse(_ bytes: [UInt8]) -> JSONValue? {
        var parser = JSONParser(bytes: bytes)
        return try? parser.document()
    }
}

/// One member of a JSON object.
struct JSONMember: Sendable, Hashable {
    /// The decoded name.
    var name: String
    /// The name's raw text, quotes included, as in the document.
    var rawName: String
    /// The value.
    var value: JSONValue
    /// The value's raw text, as in the document.
    var rawValue: String
}

private struct JSONParseError: Error {}

private struct JSONParser {
    let bytes: [UInt8]
    var index = 0
    var depth = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    mutating func document() throws(JSONParseError) -> JSONValue {
        skipWhitespace()
        let value = try value()
        skipWhitespace()
        guard index == bytes.count else { throw JSONParseError() }
        return value
    }

    mutating func skipWhitespace() {
        while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
    }

    func peek() -> UInt8? { index < bytes.count ? bytes[index] : nil }

    mutating func expect(_ literal: String) throws(JSONParseError) {
        for byte in literal.utf8 {
            guard peek() == byte else { throw JSONParseError() }
            index += 1
        }
    }

    mutating func value() throws(JSONParseError) -> JSONValue {
        guard let byte = peek() else { throw JSONParseError() }
        switch byte {
        case UInt8(ascii: "{"): return try object()
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"):
            try expect("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expect("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expect("null")
            return .null
        default: return .number(try number())
        }
    }

    mutating func object() throws(JSONParseError) -> JSONValue {
        depth += 1
        guard depth <= 64 else { throw JSONParseError() }
        defer { depth -= 1 }
        index += 1
        var members: [JSONMember] = []
        skipWhitespace()
        if peek() == UInt8(ascii: "}") {
            index += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard peek() == UInt8(ascii: "\"") else { throw JSONParseError() }
            let nameStart = index
            let name = try string()
            let rawName = String(decoding: bytes[nameStart..<index], as: UTF8.self)
            guard !members.contains(where: { $0.name == name }) else { throw JSONParseError() }
            skipWhitespace()
            try expect(":")
            skipWhitespace()
            let valueStart = index
            let value = try value()
            let rawValue = String(decoding: bytes[valueStart..<index], as: UTF8.self)
            members.append(JSONMember(name: name, rawName: rawName, value: value, rawValue: rawValue))
            skipWhitespace()
            guard let next = peek() else { throw JSONParseError() }
            index += 1
            if next == UInt8(ascii: "}") { return .object(members) }
            guard next == UInt8(ascii: ",") else { throw JSONParseError() }
        }
    }

    mutating func array() throws(JSONParseError) -> JSONValue {
        depth += 1
        guard depth <= 64 else { throw JSONParseError() }
        defer { depth -= 1 }
        index += 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if peek() == UInt8(ascii: "]") {
            index += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try value())
            skipWhitespace()
            guard let next = peek() else { throw JSONParseError() }
            index += 1
            if next == UInt8(ascii: "]") { return .array(elements) }
            guard next == UInt8(ascii: ",") else { throw JSONParseError() }
        }
    }

    mutating func string() throws(JSONParseError) -> String {
        index += 1  // opening quote
        var utf8: [UInt8] = []
        while true {
            guard let byte = peek() else { throw JSONParseError() }
            index += 1
            switch byte {
            case UInt8(ascii: "\""):
                guard let text = String(validating: utf8, as: UTF8.self) else { throw JSONParseError() }
                return text
            case UInt8(ascii: "\\"):
                guard let escape = peek() else { throw JSONParseError() }
                index += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(escape)
                case UInt8(ascii: "b"): utf8.append(0x08)
                case UInt8(ascii: "f"): utf8.append(0x0C)
                case UInt8(ascii: "n"): utf8.append(0x0A)
                case UInt8(ascii: "r"): utf8.append(0x0D)
                case UInt8(ascii: "t"): utf8.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800...0xDBFF).contains(scalar) {
                        try expect("\\u")
                        let low = try hex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw JSONParseError() }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { throw JSONParseError() }
                    utf8.append(contentsOf: String(Character(unicode)).utf8)
                default: throw JSONParseError()
                }
            default:
                guard byte >= 0x20 else { throw JSONParseError() }
                utf8.append(byte)
            }
        }
    }

    mutating func hex4() throws(JSONParseError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let byte = peek() else { throw JSONParseError() }
            index += 1
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw JSONParseError()
            }
            value = value << 4 | digit
        }
        return value
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    mutating func number() throws(JSONParseError) -> String {
        let start = index
        let isDigit: (UInt8) -> Bool = { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        if peek() == UInt8(ascii: "-") { index += 1 }
        guard let first = peek(), isDigit(first) else { throw JSONParseError() }
        index += 1
        if first != UInt8(ascii: "0") {
            while let byte = peek(), isDigit(byte) { index += 1 }
        }
        if peek() == UInt8(ascii: ".") {
            index += 1
            guard let byte = peek(), isDigit(byte) else { throw JSONParseError() }
            while let byte = peek(), isDigit(byte) { index += 1 }
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            index += 1
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { index += 1 }
            guard let byte = peek(), isDigit(byte) else { throw JSONParseError() }
            while let byte = peek(), isDigit(byte) { index += 1 }
        }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }
}
