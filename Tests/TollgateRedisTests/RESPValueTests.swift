import Testing
import TollgateRedis
import TollgateTestSupport

@Suite("RESP replies from a real server")
struct RESPValueTests {
    @Test func statusReplies() async throws {
        let server = try await RedisServer()
        defer { server.stop() }
        let client = server.client()
        defer { client.close() }
        #expect(try await client.send("PING") == .simpleString("PONG"))
        #expect(try await client.send("SET", "k", "v") == .simpleString("OK"))
        #expect(try await client.send("TYPE", "k") == .simpleString("string"))
        #expect(try await client.send("PING").string == "PONG")
        #expect(try await client.send("TYPE", "k").bytes == utf8("string"))
    }

    @Test func errorRepliesAreValuesOrThrownServerErrors() async throws {
        let server = try await RedisServer()
        defer { server.stop() }
        let client = server.client()
        defer { client.close() }
        let reply = try await client.sendReturningErrors(RedisCommand(["NOSUCHCOMMAND", "x"]))
        guard case .error(let message) = reply else {
            Issue.record("expected an error reply, got \(reply)")
            return
        }
        #expect(message.hasPrefix("ERR unknown command"))

        let thrown = await redisError { () async throws(RedisError) in try await client.send("NOSUCHCOMMAND", "x") }
        #expect(thrown?.code == .serverError)
        #expect(thrown?.message.hasPrefix("ERR unknown command") == true)
        #expect(thrown?.isConnectivity == false)

        try await client.send("LPUSH", "list", "a")
        let wrongType = await redisError { () async throws(RedisError) in try await client.send("GET", "list") }
        #expect(wrongType?.code == .serverError)
        #expect(wrongType?.message.hasPrefix("WRONGTYPE") == true)

        // An error reply does not disturb the connection: the next command gets its own reply.
        #expect(try await client.send("LLEN", "list") == .integer(1))
    }

    @Test func integerReplies() async throws {
        let server = try await RedisServer()
        defer { server.stop() }
        let client = server.client()
        defer { client.close() }
        #expect(try await client.send("INCR", "n") == .integer(1))
        #expect(try await client.send("INCRBY", "n", "-5") == .integer(-4))
        #expect(try await client.send("DECRBY", "n", "10") == .integer(-14))
        #expect(try await client.send("EXISTS", "n", "missing") == .integer(1))
        #expect(try await client.send("GET", "n").int64 == -14)
        #expect(try await client.send("INCR", "n").int64 == -13)
    }

    @Test("INCRBY reaches the Int64 extremes exactly", arguments: [Int64.max, Int64.min, Int64.max - 1, Int64.min + 1, -1, 0, 1])
    func int64Extremes(_ value: Int64) async throws {
        let server = try await RedisServer()
        defer { server.stop() }
        let client = server.client()
        defer { client.close() }
        try await client.send("SET", "n", "0")
        var incrby = RedisCommand("INCRBY")
        incrby.append("n")
        incrby.append(value)
        #expect(try await client.send(incrby) == .integer(value))
        #expect(try await client.send("GET", "n") == .bulkString(utf8(String(value))))
        #expect(try await client.send("GET", "n").int64 == value)
    }

    @Test func integerOverflowIsAServerError() async throws {
        let server = try await RedisServer()
        defer { server.stop() }
        let client = server.client()
        defer { client.close() }
        try await client.send("SET", "n", String(Int64.max))
        let error = await redisError { () async throws(RedisError) in try await client.send("INCR", "n") }
        #expect(error?.code == .serverError)
        #expect(error?.message.contains("overflow") == true)
        #expect(try await client.send("GET", "n").int64 == Int64.max)
    }

    @Test func bulkStringsNullAndEmpty() async throws {
        let server = try await RedisServer()
        defer { server.stop() }
        let client = server.client()
        defer { client.close() }
        try await client.send("SET", "k", "héllo wörld")
        #expect(try await client.send("GET", "k") == .bulkString(utf8("héllo wörld")))
        #expect(try await client.send("GET", "k").string == "héllo wörld")

        // An empty string is a bulk string of no bytes, not null.
        try await client.send("SET", "empty", "")
        let empty = try await client.send("GET", "empty")
        #expect(empty == .bulkString([]))
        #expect(!empty.isNull)

        let missing = try await client.send("GET", "missing")
        #expect(missing == .null)
        #expect(missing.isNull)
        #expect(missing.string == nil)
    }

    @Test func arrays() async throws {
        let server = try await RedisServer()
        defer { server.stop() }
        let client = server.client()
        defer { client.close() }
        #expect(try await client.send("LRANGE", "missing", "0", "-1") == .array([]))
        #expect(try await client.send("KEYS", "nothing-matches-*") == .array([]))
        try await client.send("RPUSH", "list", "a", "", "c")
        #expect(try await client.send("LRANGE", "list", "0", "-1") == .array([.bulkString(utf8("a")), .bulkString([]), .bulkString(utf8("c"))]))
        try await client.send("SET", "x", "1")
        #expect(try await client.send("MGET", "x", "missing", "x") == .array([.bulkString(utf8("1")), .null, .bulkString(utf8("1"))]))
        #expect(try await client.send("MGET", "x", "missing").array?.count == 2)
    }

    @Test func nestedArraysFromLua() async throws {
        let server = try await RedisServer()
        defer { server.stop() }
        let client = server.client()
        defer { client.close() }
        let script = """
            return {1, {2, {3, 'x', {}}}, 'a', -9, {redis.status_reply('FINE'), redis.error_reply('E1 boom')}, false, 'z'}
            """
        let reply = try await client.send("EVAL", script, "0")
        let expected: RESPValue = .array([
            .integer(1),
            .array([.integer(2), .array([.integer(3), .bulkString(utf8("x")), .array([])])]),
            .bulkString(utf8("a")),
            .integer(-9),
            .array([.simpleString("FINE"), .error("E1 boom")]),
            .null,
            .bulkString(utf8("z")),
        ])
        #expect(reply == expected)
        #expect(reply.array?[1].array?[1].array?[1].string == "x")
    }

    @Test func nullArray() async throws {
        let server = try await RedisServer()
        defer { server.stop() }
        let client = server.client()
        defer { client.close() }
        // BLPOP answers `*-1` when it times out.
        let reply = try await client.send("BLPOP", "missing", "0.01")
        #expect(reply == .null)
        #expect(reply.array == nil)
        try await client.send("RPUSH", "present", "v")
        #expect(try await client.send("BLPOP", "present", "0.01") == .array([.bulkString(utf8("present")), .bulkString(utf8("v"))]))
    }

    static let allBytes: [UInt8] = (0...255).map { UInt8($0) }

    static let binaryValues: [[UInt8]] = [
        [],
        [0],
        [13, 10],
        Array("\r\n$3\r\nfoo\r\n*1\r\n".utf8),
        [0xFF, 0xFE, 0xC3, 0x28, 0x80],
        allBytes,
        allBytes.reversed() + [0, 13, 10, 0],
    ]

    @Test("binary values round-trip through SET/GET", arguments: binaryValues.indices)
    func binaryValueRoundTrip(_ index: Int) async throws {
        let value = Self.binaryValues[index]
        let server = try await RedisServer()
        defer { server.stop() }
        let client = server.client()
        defer { client.close() }
        #expect(try await client.send(command("SET", utf8("key"), value)) == .simpleString("OK"))
        #expect(try await client.send(command("GET", utf8("key"))) == .bulkString(value))
        #expect(try await client.send(command("STRLEN", utf8("key"))) == .integer(Int64(value.count)))
    }

    @Test("binary keys round-trip through SET/GET", arguments: binaryValues.indices.dropFirst())
    func binaryKeyRoundTrip(_ index: Int) async throws {
        let key = Self.binaryValues[index]
        let server = try await RedisServer()
        defer { server.stop() }
        let client = server.client()
        defer { client.close() }
        let value = Self.allBytes + key
        #expect(try await client.send(command("SET", key, value)) == .simpleString("OK"))
        #expect(try await client.send(command("GET", key)) == .bulkString(value))
        // The key is stored exactly: KEYS returns its bytes, and it is the only key.
        #expect(try await client.send("KEYS", "*") == .array([.bulkString(key)]))
        // A key differing only in its last byte is another key.
        #expect(try await client.send(command("GET", key.dropLast() + [key.last! &+ 1])) == .null)
    }

    @Test func allByteValuesInOneKeyAndValue() async throws {
        let server = try await RedisServer()
        defer { server.stop() }
        let client = server.client()
        defer { client.close() }
        let key: [UInt8] = [0] + Self.allBytes + [13, 10]
        let value: [UInt8] = Self.allBytes + [13, 10, 0] + Self.allBytes
        #expect(try await client.send(command("SET", key, value)) == .simpleString("OK"))
        let reply = try await client.send(command("GET", key))
        #expect(reply == .bulkString(value))
        #expect(reply.bytes == value)
        #expect(reply.bytes?.count == 256 * 2 + 3)
    }

    @Test func largeValue() async throws {
        let server = try await RedisServer()
        defer { server.stop() }
        let client = server.client()
        defer { client.close() }
        let size = 5 * 1024 * 1024
        // Pseudo-random bytes with a prime period, so a lost, doubled or shifted chunk shows.
        var state: UInt32 = 2_463_534_242
        let block: [UInt8] = (0..<4099).map { _ in
            state ^= state << 13; state ^= state >> 17; state ^= state << 5
            return UInt8(truncatingIfNeeded: state)
        }
        var value: [UInt8] = []
        value.reserveCapacity(size + block.count)
        while value.count < size { value += block }
        value.removeLast(value.count - size)
        #expect(try await client.send(command("SET", utf8("big"), value)) == .simpleString("OK"))
        #expect(try await client.send("STRLEN", "big") == .integer(Int64(size)))
        let reply = try await client.send(command("GET", utf8("big")))
        #expect(reply.bytes?.count == size)
        #expect(reply == .bulkString(value))
        // The connection is still in step after the big reply.
        #expect(try await client.send("PING") == .simpleString("PONG"))
    }
}

@Suite("RESP decoding")
struct RESPDecodingTests {
    @Test("every reply type, several replies, a partial tail ignored")
    func decodes() throws {
        let bytes = Array("+OK\r\n-ERR bad\r\n:42\r\n$3\r\nabc\r\n$-1\r\n*3\r\n:1\r\n$1\r\nx\r\n*0\r\n$5\r\nhel".utf8)
        let values = try RESPValue.decode(bytes)
        #expect(values == [.simpleString("OK"), .error("ERR bad"), .integer(42), .bulkString(Array("abc".utf8)), .null,
                           .array([.integer(1), .bulkString(Array("x".utf8)), .array([])])])
    }

    @Test("malformed input is a protocol error")
    func malformed() {
        #expect(throws: RedisError.self) { try RESPValue.decode(Array("?what\r\n".utf8)) }
    }
}
