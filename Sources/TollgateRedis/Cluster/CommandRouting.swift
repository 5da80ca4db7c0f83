/// Where a command must run on a cluster, read from the command's own words.
enum CommandRouting: Sendable, Hashable {
    /// The primary serving this slot (the command's first key).
    case slot(Int)
    /// Any one primary (no key: `PING`, `PUBLISH`, `INFO`...).
    case anyPrimary
    /// Every primary, each answering for itself (`FLUSHALL`, `FUNCTION LOAD`, `SCRIPT LOAD`...).
    case everyPrimary

    /// Commands that carry no key at all.
    private static let keyless: Set<String> = [
        "PING", "ECHO", "INFO", "PUBLISH", "SPUBLISH", "TIME", "DBSIZE", "CONFIG", "CLUSTER", "CLIENT", "COMMAND",
        "ROLE", "LASTSAVE", "SLOWLOG", "LATENCY", "MEMORY", "KEYS", "RANDOMKEY", "WAIT", "SCAN", "HELLO",
        "ASKING", "READONLY", "READWRITE", "AUTH", "SELECT", "DEBUG", "SAVE", "BGSAVE", "BGREWRITEAOF",
    ]
    /// Commands whose effect must reach every primary.
    private static let broadcast: Set<String> = ["FLUSHALL", "FLUSHDB", "FUNCTION", "SCRIPT"]

    init(_ command: RedisCommand) {
        let words = command.leadingArguments(4)
        let name = words.first.map { String(decoding: $0, as: UTF8.self).uppercased() } ?? ""
        if Self.broadcast.contains(name) {
            self = .everyPrimary
            return
        }
        if name == "SPUBLISH", words.count > 1 {
            self = .slot(HashSlot.of(words[1]))
            return
        }
        if Self.keyless.contains(name) {
            self = .anyPrimary
            return
        }
        switch name {
        case "FCALL", "FCALL_RO", "EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO":
            // name script numkeys key...
            guard words.count > 3, let count = Int(String(decoding: words[2], as: UTF8.self)), count > 0 else {
                self = .anyPrimary
                return
            }
            self = .slot(HashSlot.of(words[3]))
        case "OBJECT":
            self = words.count > 2 ? .slot(HashSlot.of(words[2])) : .anyPrimary
        default:
            self = words.count > 1 ? .slot(HashSlot.of(words[1])) : .anyPrimary
        }
    }
}

extension RedisCommand {
    /// The first `limit` arguments, decoded from the encoded body (routing needs only a few).
    func leadingArguments(_ limit: Int) -> [ArraySlice<UInt8>] {
        var result: [ArraySlice<UInt8>] = []
        var index = body.startIndex
        while result.count < limit, index < body.endIndex, body[index] == UInt8(ascii: "$") {
            var length = 0
            index += 1
            while index < body.endIndex, body[index] != UInt8(ascii: "\r") {
                length = length * 10 + Int(body[index] &- UInt8(ascii: "0"))
                index += 1
            }
            let start = index + 2
            let end = start + length
            guard end <= body.endIndex else { break }
            result.append(body[start..<end])
            index = end + 2
        }
        return result
    }
}
