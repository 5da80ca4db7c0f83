import Testing
import TollgateRedis

@Suite("RedisAddress parsing")
struct RedisAddressTests {
    struct Valid: Sendable, CustomTestStringConvertible {
        let text: String
        let expected: RedisAddress
        var testDescription: String { text }
    }

    static let valid: [Valid] = [
        Valid(text: "redis://localhost:6380", expected: RedisAddress(endpoint: .tcp(host: "localhost", port: 6380))),
        Valid(text: "redis://cache.internal", expected: RedisAddress(endpoint: .tcp(host: "cache.internal", port: 6379))),
        Valid(text: "REDIS://Example.COM:7000", expected: RedisAddress(endpoint: .tcp(host: "Example.COM", port: 7000))),
        Valid(text: "redis://127.0.0.1:1", expected: RedisAddress(endpoint: .tcp(host: "127.0.0.1", port: 1))),
        Valid(text: "redis://127.0.0.1:65535", expected: RedisAddress(endpoint: .tcp(host: "127.0.0.1", port: 65535))),
        Valid(
            text: "redis://alice:s3cret@db.example:6390/4",
            expected: RedisAddress(endpoint: .tcp(host: "db.example", port: 6390), user: "alice", password: "s3cret", database: 4)),
        Valid(
            text: "redis://:onlypass@localhost",
            expected: RedisAddress(endpoint: .tcp(host: "localhost", port: 6379), password: "onlypass")),
        Valid(
            text: "redis://:p%40ss%3Aword@localhost:6379",
            expected: RedisAddress(endpoint: .tcp(host: "localhost", port: 6379), password: "p@ss:word")),
        Valid(text: "redis://localhost:6379/15", expected: RedisAddress(endpoint: .tcp(host: "localhost", port: 6379), database: 15)),
        Valid(text: "redis://localhost:6379/", expected: RedisAddress(endpoint: .tcp(host: "localhost", port: 6379))),
        Valid(text: "redis://[::1]:6380", expected: RedisAddress(endpoint: .tcp(host: "::1", port: 6380))),
        Valid(text: "redis://[::1]", expected: RedisAddress(endpoint: .tcp(host: "::1", port: 6379))),
        Valid(
            text: "redis://u:p@[fe80::1]:7001/2",
            expected: RedisAddress(endpoint: .tcp(host: "fe80::1", port: 7001), user: "u", password: "p", database: 2)),
        Valid(text: "unix:///tmp/redis.sock", expected: RedisAddress(endpoint: .unixSocket(path: "/tmp/redis.sock"))),
        Valid(
            text: "unix:///var/run/redis/redis-server.sock?db=3",
            expected: RedisAddress(endpoint: .unixSocket(path: "/var/run/redis/redis-server.sock"), database: 3)),
        Valid(
            text: "unix:///tmp/r.sock?db=2&user=bob&password=pw",
            expected: RedisAddress(endpoint: .unixSocket(path: "/tmp/r.sock"), user: "bob", password: "pw", database: 2)),
    ]

    @Test("valid addresses parse", arguments: valid)
    func parsesValid(_ example: Valid) throws {
        let address = try RedisAddress(parsing: example.text)
        #expect(address == example.expected)
    }

    static let invalid: [String] = [
        "",
        "localhost",
        "localhost:6379",
        "127.0.0.1:6379",
        "//localhost:6379",
        "http://localhost:6379",
        "rediss://localhost:6379",
        "tcp://localhost:6379",
        "redis://",
        "redis://:6379",
        "redis://localhost:0",
        "redis://localhost:65536",
        "redis://localhost:99999",
        "redis://localhost:port",
        "redis://localhost:-1",
        "redis://localhost:6379/abc",
        "redis://localhost:6379/-1",
        "redis://localhost:6379/1/2",
        "unix:relative.sock",
        "unix:relative/dir/redis.sock",
        "unix://relative.sock",
        "unix://tmp/redis.sock",
        "unix://",
        "unix:///tmp/redis.sock?db=abc",
        "unix:///tmp/redis.sock?db=-2",
        "unix:///tmp/redis.sock?db=",
    ]

    @Test("bad addresses throw invalidAddress", arguments: invalid)
    func rejectsInvalid(_ text: String) {
        do {
            let address = try RedisAddress(parsing: text)
            Issue.record("'\(text)' parsed as \(address)")
        } catch {
            #expect(error.code == .invalidAddress)
            #expect(!error.message.isEmpty)
        }
    }

    static let withPasswords: [String] = [
        "redis://alice:hunter2@localhost:6379",
        "redis://:hunter2@localhost:6379/3",
        "redis://alice:hunter2@[::1]:6379",
        "unix:///tmp/redis.sock?password=hunter2",
        "unix:///tmp/redis.sock?user=alice&password=hunter2&db=1",
    ]

    @Test("description never shows the password", arguments: withPasswords)
    func descriptionHidesPassword(_ text: String) throws {
        let address = try RedisAddress(parsing: text)
        #expect(address.password == "hunter2")
        #expect(!address.description.contains("hunter2"))
        #expect(!String(describing: address).contains("hunter2"))
        #expect(!"\(address)".contains("hunter2"))
    }

    static let badWithPasswords: [String] = [
        "redis://alice:hunter2@localhost:notaport",
        "redis://alice:hunter2@localhost:6379/notadb",
        "redis://alice:hunter2@localhost:0",
        "http://alice:hunter2@localhost:6379",
        "redis://:hunter2@:6379",
        "redis://alice:hun/ter2@localhost:6379",
        "unix:///tmp/redis.sock?password=hunter2&db=abc",
        "unix:///tmp/redis.sock?db=x&PASSWORD=hunter2",
        "unix://tmp/redis.sock?user=alice&password=hunter2",
    ]

    @Test("errors for bad addresses never show the password", arguments: badWithPasswords)
    func invalidAddressMessageHidesPassword(_ text: String) {
        do {
            let address = try RedisAddress(parsing: text)
            Issue.record("'\(text)' parsed as \(address)")
        } catch {
            #expect(error.code == .invalidAddress)
            #expect(!error.message.contains("hunter2"), "message: \(error.message)")
            #expect(!error.description.contains("hunter2"), "description: \(error.description)")
            #expect(!error.message.contains("ter2"), "message: \(error.message)")
        }
    }

    @Test("description shows where the server is", arguments: [
        ("redis://localhost:6380", "redis://localhost:6380"),
        ("redis://localhost", "redis://localhost:6379"),
        ("redis://alice:pw@localhost:6380/2", "redis://alice:***@localhost:6380/2"),
        ("redis://:pw@localhost:6380", "redis://:***@localhost:6380"),
        ("redis://[::1]:6380", "redis://[::1]:6380"),
        ("unix:///tmp/redis.sock", "unix:///tmp/redis.sock"),
        ("unix:///tmp/redis.sock?db=7", "unix:///tmp/redis.sock?db=7"),
    ])
    func description(_ text: String, _ shown: String) throws {
        #expect(try RedisAddress(parsing: text).description == shown)
    }

    @Test("the description of an address without credentials parses back to it", arguments: valid.filter {
        $0.expected.password == nil && $0.expected.user == nil
    })
    func descriptionRoundTrips(_ example: Valid) throws {
        let address = try RedisAddress(parsing: example.text)
        #expect(try RedisAddress(parsing: address.description) == address)
    }
}

@Suite("RedisCommand encoding")
struct RedisCommandTests {
    @Test func encodesWordsAsRESPArrayOfBulkStrings() {
        let command = RedisCommand(["SET", "key", "välue"])
        #expect(command.argumentCount == 3)
        #expect(command.encoded == utf8("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$6\r\nvälue\r\n"))
    }

    @Test func encodesBinaryIntegerAndEmptyArguments() {
        var command = RedisCommand("X")
        command.append([0, 13, 10, 255])
        command.append(Int64.min)
        command.append(-7)
        command.append("")
        #expect(command.argumentCount == 5)
        let expected: [UInt8] = utf8("*5\r\n$1\r\nX\r\n$4\r\n") + [0, 13, 10, 255]
            + utf8("\r\n$20\r\n-9223372036854775808\r\n$2\r\n-7\r\n$0\r\n\r\n")
        #expect(command.encoded == expected)
    }

    @Test func fcallPutsKeyCountBeforeKeysAndArguments() {
        let command = RedisCommand.fcall("fn", keys: ["k1", "k2"], arguments: ["a"])
        #expect(command.encoded == RedisCommand(["FCALL", "fn", "2", "k1", "k2", "a"]).encoded)
    }
}
