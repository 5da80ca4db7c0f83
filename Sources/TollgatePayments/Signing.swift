import Crypto
import Foundation

/// HMAC-SHA256 of `message` keyed by the UTF-8 bytes of `key`.
func hmacSHA256(key: String, message: [UInt8]) -> [UInt8] {
    let code = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: Array(key.utf8)))
    return Array(code)
}

/// Compares two byte strings in time that depends only on their lengths.
func constantTimeEquals(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
    guard lhs.count == rhs.count else { return false }
    var difference: UInt8 = 0
    for index in lhs.indices { difference |= lhs[index] ^ rhs[index] }
    return difference == 0
}

/// Lowercase hexadecimal.
func hexEncoded(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var text: [UInt8] = []
    text.reserveCapacity(bytes.count * 2)
    for byte in bytes {
        text.append(digits[Int(byte >> 4)])
        text.append(digits[Int(byte & 0x0F)])
    }
    return String(decoding: text, as: UTF8.self)
}

/// Bytes from hexadecimal of either case; `nil` if odd-length or not hex.
func hexDecoded(_ text: String) -> [UInt8]? {
    let bytes = Array(text.utf8)
    guard bytes.count % 2 == 0 else { return nil }
    func nibble(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
    var result: [UInt8] = []
    result.reserveCapacity(bytes.count / 2)
    var index = 0
    while index < bytes.count {
        guard let high = nibble(bytes[index]), let low = nibble(bytes[index + 1]) else { return nil }
        result.append(high << 4 | low)
        index += 2
    }
    return result
}

/// Standard base64 with padding.
func base64Encoded(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }

/// Bytes from standard base64; `nil` if malformed.
func base64Decoded(_ text: String) -> [UInt8]? { Data(base64Encoded: text).map { Array($0) } }

/// Percent-encodes everything but RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`), as
/// `encodeURIComponent` does for every character a query value needs escaped.
func percentEncoded(_ text: String) -> String {
    let hex = Array("0123456789ABCDEF".utf8)
    var result: [UInt8] = []
    for byte in text.utf8 {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
            UInt8(ascii: "~"):
            result.append(byte)
        default:
            result.append(UInt8(ascii: "%"))
            result.append(hex[Int(byte >> 4)])
            result.append(hex[Int(byte & 0x0F)])
        }
    }
    return String(decoding: result, as: UTF8.self)
}

/// `name=value&...` with values percent-encoded, in the order given.
func queryString(_ parameters: [(String, String)]) -> String {
    parameters.map { "\($0.0)=\(percentEncoded($0.1))" }.joined(separator: "&")
}
