import Foundation
import Testing
import TollgateTestSupport

/// A JSON value, for exact comparisons of response bodies (`#expect(body == ["allowed": true])`)
/// and for the schema validator.
enum JSONValue: Hashable, Sendable, CustomStringConvertible {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(parsing bytes: [UInt8]) throws {
        self = try JSONDecoder().decode(JSONValue.self, from: Data(bytes))
    }

    subscript(key: String) -> JSONValue? {
        if case .object(let fields) = self { return fields[key] }
        return nil
    }

    subscript(index: Int) -> JSONValue? {
        if case .array(let items) = self, items.indices.contains(index) { return items[index] }
        return nil
    }

    var string: String? { if case .string(let text) = self { return text } else { return nil } }
    var int: Int64? { if case .int(let value) = self { return value } else { return nil } }
    var bool: Bool? { if case .bool(let value) = self { return value } else { return nil } }
    var array: [JSONValue]? { if case .array(let items) = self { return items } else { return nil } }
    var object: [String: JSONValue]? { if case .object(let fields) = self { return fields } else { return nil } }
    var isNull: Bool { self == .null }

    /// The JSON-Schema type names this value has (`integer` is also a `number`).
    var schemaTypes: Set<String> {
        switch self {
        case .null: return ["null"]
        case .bool: return ["boolean"]
        case .int: return ["integer", "number"]
        case .double(let value): return value == value.rounded() ? ["integer", "number"] : ["number"]
        case .string: return ["string"]
        case .array: return ["array"]
        case .object: return ["object"]
        }
    }

    /// The same value with some object fields replaced (for expected values that differ in one field).
    func with(_ changes: [String: JSONValue]) -> JSONValue {
        guard case .object(var fields) = self else { return self }
        for (key, value) in changes { fields[key] = value }
        return .object(fields)
    }

    /// The same object without some fields.
    func without(_ keys: String...) -> JSONValue {
        guard case .object(var fields) = self else { return self }
        for key in keys { fields[key] = nil }
        return .object(fields)
    }

    var description: String {
        switch self {
        case .null: return "null"
        case .bool(let value): return String(value)
        case .int(let value): return String(value)
        case .double(let value): return String(value)
        case .string(let text): return "\"\(text)\""
        case .array(let items): return "[" + items.map(\.description).joined(separator: ", ") + "]"
        case .object(let fields):
            return "{" + fields.sorted { $0.key < $1.key }.map { "\"\($0.key)\": \($0.value)" }.joined(separator: ", ") + "}"
        }
    }
}

extension JSONValue: Decodable {
    init(from decoder: any Decoder) throws {
        if let container = try? decoder.container(keyedBy: JSONKey.self) {
            var fields: [String: JSONValue] = [:]
            for key in container.allKeys { fields[key.stringValue] = try container.decode(JSONValue.self, forKey: key) }
            self = .object(fields)
            return
        }
        if var container = try? decoder.unkeyedContainer() {
            var items: [JSONValue] = []
            while !container.isAtEnd { items.append(try container.decode(JSONValue.self)) }
            self = .array(items)
            return
        }
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .int(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else {
            self = .string(try container.decode(String.self))
        }
    }

    private struct JSONKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByStringLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral {
    init(nilLiteral: ()) { self = .null }
    init(booleanLiteral value: Bool) { self = .bool(value) }
    init(integerLiteral value: Int64) { self = .int(value) }
    init(stringLiteral value: String) { self = .string(value) }
    init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}

extension TestHTTPResponse {
    /// The body as a `JSONValue` (`.null` when it is not JSON, so comparisons fail visibly).
    var value: JSONValue { (try? JSONValue(parsing: body)) ?? .string("<not JSON: \(text.prefix(200))>") }

    /// The `error.code` of a JSON error body.
    var errorCode: String? { value["error"]?["code"]?.string }
}

/// The tokens every test server gets.
enum E2ETokens {
    static let admin = "tg-test-admin-6f1d0c2a"
    static let service = "tg-test-service-93b4e7aa"
    /// Servers on one Redis share the coupon secret (a server with another is refused).
    static let couponSecret = "tg-test-coupon-secret-51c0e2"
    static let couponSecretArguments = ["--coupon-secret", couponSecret]
}

/// A `tollgate serve` on its own test Redis (a single server, or with
/// `TOLLGATE_TEST_REDIS=cluster` a local Redis Cluster), with known admin and service tokens,
/// and shorthands for the calls the tests make.
struct E2EServer: Sendable {
    let testRedis: TestRedis
    let server: ServerProcess

    /// The single server; tests that stop or restart it run only in single mode.
    var redis: RedisServer {
        guard let single = testRedis.single else { preconditionFailure("this test needs a single Redis (it is skipped on a cluster)") }
        return single
    }

    var http: TestHTTPClient { server.http }
    var port: Int { server.port }

    init(arguments: [String] = [], environment: [String: String] = [:], persistentRedis: Bool = false,
         redisArguments: [String] = []) async throws {
        testRedis = try await TestRedis.start(persistent: persistentRedis, extraArguments: redisArguments)
        // A generous Redis timeout: the tests start many servers at once on a small machine,
        // and `serve` uses it for its start-up calls too (loading the Lua library).
        let timeout = arguments.contains("--redis-timeout") ? [] : ["--redis-timeout", "10s"]
        server = try await ServerProcess.start(
            redisArguments: testRedis.serveArguments, adminToken: E2ETokens.admin, serviceToken: E2ETokens.service,
            arguments: ["--log-level", "warning"] + timeout + E2ETokens.couponSecretArguments + arguments, environment: environment)
    }

    /// A server started elsewhere (fault tests restart and kill servers on one Redis).
    init(redis: RedisServer, server: ServerProcess) {
        self.testRedis = TestRedis(redis)
        self.server = server
    }

    /// SIGTERM to the server (waiting for it), then stops Redis.
    func stop() async throws {
        try await server.stop()
        testRedis.single?.stop()
    }

    /// Runs `body` with a server, stopping it afterwards whatever happens.
    static func with<T>(arguments: [String] = [], environment: [String: String] = [:], persistentRedis: Bool = false,
                        redisArguments: [String] = [], _ body: (E2EServer) async throws -> T) async throws -> T {
        let server = try await E2EServer(arguments: arguments, environment: environment, persistentRedis: persistentRedis,
                                         redisArguments: redisArguments)
        do {
            let result = try await body(server)
            try await server.stop()
            return result
        } catch {
            try? await server.stop()
            throw error
        }
    }

    // MARK: requests

    func admin(_ method: String, _ path: String, _ body: Any? = nil) async throws -> TestHTTPResponse {
        try await http.json(method, path, token: E2ETokens.admin, body: body)
    }

    func service(_ method: String, _ path: String, _ body: Any? = nil) async throws -> TestHTTPResponse {
        try await http.json(method, path, token: E2ETokens.service, body: body)
    }

    func request(_ method: String, _ path: String, token: String?, _ body: Any? = nil) async throws -> TestHTTPResponse {
        try await http.json(method, path, token: token, body: body)
    }

    /// `POST /v1/authorize` with the service token; expects 200 and returns the decision.
    func authorize(_ body: [String: Any], sourceLocation: SourceLocation = #_sourceLocation) async throws -> JSONValue {
        let response = try await service("POST", "/v1/authorize", body)
        #expect(response.status == 200, "\(response)", sourceLocation: sourceLocation)
        return response.value
    }

    /// `GET /v1/check` with the service token and the given headers.
    /// `GET /v1/check` with `headers`; `usage` goes in the URL's query, where the gateway's
    /// configuration writes it.
    func check(_ headers: [(String, String)], usage: String? = nil, serviceToken: String? = E2ETokens.service) async throws -> TestHTTPResponse {
        var fields = headers
        if let serviceToken { fields.append(("Tollgate-Service-Token", serviceToken)) }
        let query = usage.map { "?usage=" + ($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0) } ?? ""
        return try await http.send("GET", "/v1/check" + query, headers: fields)
    }

    // MARK: setup through the API

    /// Creates an account (and credits it when `credit` is given); requires success.
    func account(_ id: String, credit: String? = nil, creditLimit: String? = nil) async throws {
        var body: [String: Any] = ["id": id]
        if let creditLimit { body["credit_limit"] = creditLimit }
        let created = try await admin("POST", "/v1/accounts", body)
        try #require(created.status == 201, "\(created)")
        if let credit {
            let credited = try await admin("POST", "/v1/accounts/\(E2EPath.segment(id))/credits",
                                           ["amount": credit, "request_id": "setup-credit-\(id)"])
            try #require(credited.status == 200 && credited.value["allowed"] == true, "\(credited)")
        }
    }

    /// Sets a price; requires success.
    func price(_ meter: String, _ price: String, per: Int64 = 1, model: String? = nil) async throws {
        var body: [String: Any] = ["price": price, "per": per]
        if let model { body["model"] = model }
        let response = try await admin("PUT", "/v1/prices/\(E2EPath.segment(meter))", body)
        try #require(response.status == 200, "\(response)")
    }

    /// Creates an API key; returns its id and secret.
    func key(for account: String) async throws -> (id: String, secret: String) {
        let response = try await admin("POST", "/v1/accounts/\(E2EPath.segment(account))/keys")
        try #require(response.status == 201, "\(response)")
        return (try #require(response.value["key_id"]?.string), try #require(response.value["secret"]?.string))
    }

    /// Creates an account-scoped token.
    func accountToken(for account: String) async throws -> String {
        let response = try await admin("POST", "/v1/accounts/\(E2EPath.segment(account))/tokens")
        try #require(response.status == 201, "\(response)")
        return try #require(response.value["token"]?.string)
    }

    /// Sets limits on an account or key (`/v1/accounts/ID/limits` or `/v1/keys/ID/limits`); requires success.
    func limits(_ path: String, _ body: [String: Any]) async throws {
        let response = try await admin("PUT", path, body)
        try #require(response.status == 200, "\(response)")
    }

    /// The account as `GET /v1/accounts/{id}` returns it.
    func show(_ id: String) async throws -> JSONValue {
        let response = try await admin("GET", "/v1/accounts/\(E2EPath.segment(id))")
        try #require(response.status == 200, "\(response)")
        return response.value
    }
}

enum E2EPath {
    /// Percent-encodes one path segment (everything but unreserved characters).
    static func segment(_ text: String) -> String {
        let allowed = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}

/// Processes (by /proc) whose command line mentions `text`: to see that a server's
/// redis-server has gone.
func processes(mentioning text: String) -> [Int32] {
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
    return entries.compactMap { entry -> Int32? in
        guard let pid = Int32(entry),
              let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline"), !data.isEmpty else { return nil }
        let line = String(decoding: data.map { $0 == 0 ? UInt8(ascii: " ") : $0 }, as: UTF8.self)
        return line.contains(text) ? pid : nil
    }
}
