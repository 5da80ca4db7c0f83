import Foundation
import Testing
import TollgateRedis
import TollgateTestSupport

/// The HTTP API fuzzed from its own `openapi.json` (a generator of our own: request bodies from
/// the schemas, then mutated; hostile path and query values; every kind of token). Bounded:
/// 20 cases per operation, from a fresh seed each run (printed; `TOLLGATE_HTTP_FUZZ_SEED`
/// repeats one). No 5xx other than 503 `engine_unavailable`, the server stays up, every answer
/// matches the document's schema for its status, and a 4xx, a 503 or a read changes nothing in
/// Redis (`DEBUG DIGEST` before and after).
@Suite("HTTP API fuzzed from openapi.json", .enabled(if: !TestRedis.isCluster, "reads DEBUG DIGEST of the one Redis"))
struct HTTPFuzzTests {
    static let hostileStrings: [String] = [
        "", " ", "acme", "other", "nobody", "0", "-1", "1e3", "0.0000001", "9007199254.740992", "99999999999999999999",
        "NaN", "null", "true", "../../etc/passwd", "%00", "a%2Fb", "\u{0}", "\u{202E}rtl", "é", "🙂", "<script>",
        "=cmd|' /C calc'!A0", String(repeating: "A", count: 300), "2026-02-30", "2026-11-25T25:00:00Z", "hold_acme_1",
        "key_0000000000000000", "tgk_guess", "api_call", "tokens.input",
    ]

    static func hostileJSON(_ r: inout SplitMix64) -> Any {
        switch Int.random(in: 0..<8, using: &r) {
        case 0: return NSNull()
        case 1: return Bool.random(using: &r)
        case 2: return [Int64.max, Int64.min, -1, 0, 1 << 53, 1 << 60].randomElement(using: &r)!
        case 3: return [1.5, -0.0, 1e308].randomElement(using: &r)!
        case 4: return [] as [Any]
        case 5: return ["x": 1] as [String: Any]
        default: return hostileStrings.randomElement(using: &r)!
        }
    }

    /// A value for `schema` (resolving `$ref`s), sometimes deliberately wrong.
    static func value(_ schema: [String: Any], _ document: [String: Any], _ r: inout SplitMix64, depth: Int = 0) -> Any {
        if let ref = schema["$ref"] as? String, let name = ref.split(separator: "/").last,
           let components = document["components"] as? [String: Any], let schemas = components["schemas"] as? [String: Any],
           let resolved = schemas[String(name)] as? [String: Any] {
            return value(resolved, document, &r, depth: depth)
        }
        if r.chance(12) || depth > 4 { return hostileJSON(&r) }
        if let options = schema["enum"] as? [Any], !options.isEmpty { return options.randomElement(using: &r)! }
        if let examples = schema["examples"] as? [Any], !examples.isEmpty, r.chance(2) { return examples.randomElement(using: &r)! }
        switch schema["type"] as? String {
        case "object":
            var object: [String: Any] = [:]
            let properties = schema["properties"] as? [String: Any] ?? [:]
            let required = Set(schema["required"] as? [String] ?? [])
            for (name, sub) in properties where required.contains(name) || r.chance(2) {
                if required.contains(name) && r.chance(15) { continue }
                object[name] = value(sub as? [String: Any] ?? [:], document, &r, depth: depth + 1)
            }
            if r.chance(15) { object["unexpected_field"] = 1 }
            return object
        case "array":
            let count = r.chance(10) ? Int.random(in: 60...80, using: &r) : Int.random(in: 0...3, using: &r)
            return (0..<count).map { _ in value(schema["items"] as? [String: Any] ?? [:], document, &r, depth: depth + 1) }
        case "integer":
            return r.chance(3) ? [Int64(-1), 0, 1 << 53, Int64.max].randomElement(using: &r)! : Int64.random(in: 0...5000, using: &r)
        case "string":
            if let pattern = schema["pattern"] as? String, pattern.contains("[0-9]") {
                return ["1", "0.5", "10", "0.000001", "12.3456789", "-1", "1e2"].randomElement(using: &r)!
            }
            return r.chance(2) ? "fz-\(Int.random(in: 0...30, using: &r))" : hostileStrings.randomElement(using: &r)!
        case "boolean": return Bool.random(using: &r)
        default: return hostileStrings.randomElement(using: &r)!
        }
    }

    /// GET routes that may write on a success (`/v1/check` is a decision, and charges, so it
    /// is not a read at all).
    static let readsThatWrite: Set<String> = []

    @Test("every operation, random and hostile requests: no 5xx but 503, every answer as the document describes it, no state change on a 4xx, a 503 or a read")
    func fuzz() async throws {
        try await E2EServer.with(redisArguments: ["--enable-debug-command", "local"]) { s in
            try await s.price("api_call", "0.01")
            try await s.account("acme", credit: "10")
            let own = try await s.accountToken(for: "acme")
            let key = try await s.key(for: "acme")
            let hold = try await s.authorize(["account": "acme", "request_id": "fz-hold", "mode": "hold", "ttl_ms": 600_000,
                                              "usage": [["meter": "api_call", "quantity": 1]]])["hold_id"]?.string ?? "x"
            let tokens: [String?] = [nil, E2ETokens.admin, E2ETokens.admin, E2ETokens.service, E2ETokens.service, own, "tga_guess"]
            let documentURL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("Sources/TollgateServer/Resources/openapi.json")
            let document = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: documentURL)) as? [String: Any])
            let paths = try #require(document["paths"] as? [String: Any])
            let redis = s.redis.client(connections: 1)
            defer { redis.close() }
            func digest() async throws -> String { try await redis.send("DEBUG", "DIGEST").string ?? "" }
            // A key whose TTL (in real time) runs out between two digests would look like a
            // write of the request between them: Redis expires keys only when they are read, here.
            _ = try await redis.send("DEBUG", "SET-ACTIVE-EXPIRE", "0")

            let seed = TestSeed.draw("TOLLGATE_HTTP_FUZZ_SEED", for: "HTTP API fuzzed")
            var r = SplitMix64(seed: seed)
            // Every answer, success or error, against the document's response schemas.
            let contract = Contract(document: try JSONValue(parsing: Array(try Data(contentsOf: documentURL))))
            var failures: [String] = []
            var counts: [Int: Int] = [:]
            // Streams and upgrades do not end; webhooks and coupon redemptions count failed
            // attempts on purpose (a 4xx there may change counters).
            let skipped: Set<String> = ["/v1/accounts/{id}/events", "/v1/events", "/v1/accounts/{id}/ws"]
            let counting: Set<String> = ["/v1/accounts/{id}/redeem", "/v1/webhooks/{provider}"]
            for (template, operations) in paths.sorted(by: { $0.key < $1.key }) where !skipped.contains(template) {
                for (method, operation) in (operations as? [String: Any] ?? [:]) where ["get", "post", "put", "delete"].contains(method) {
                    let operation = operation as? [String: Any] ?? [:]
                    let bodySchema = ((operation["requestBody"] as? [String: Any])?["content"] as? [String: Any])?["application/json"] as? [String: Any]
                    for _ in 0..<20 {
                        var path = template
                        for (name, pool) in [("{id}", ["acme", "acme", "nobody", "a%2Fb", "%FF", String(repeating: "z", count: 300)]),
                                             ("{hold_id}", [hold, hold, "hold_nobody_1", "x", "hold_acme_99999999999999999999"]),
                                             ("{key_id}", [key.id, "key_0000000000000000", "x"]),
                                             ("{meter}", ["api_call", "fz.meter", "%00", "a%20b"]),
                                             ("{provider}", ["moonpay", "alchemypay", "nope"])] {
                            path = path.replacingOccurrences(of: name, with: pool.randomElement(using: &r)!)
                        }
                        if r.chance(2) {
                            let names = ["limit", "cursor", "from", "to", "by", "kind", "prefix"]
                            path += "?" + (0..<Int.random(in: 1...3, using: &r)).map { _ in
                                "\(names.randomElement(using: &r)!)=\(Self.hostileStrings.randomElement(using: &r)!.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")"
                            }.joined(separator: "&")
                        }
                        let body: Any? = bodySchema.flatMap { $0["schema"] as? [String: Any] }.map { Self.value($0, document, &r) }
                        let token = tokens.randomElement(using: &r)!
                        let before = try await digest()
                        let response: TestHTTPResponse
                        let what = "\(method.uppercased()) \(path.prefix(120)) as \(token.map { String($0.prefix(6)) } ?? "none")"
                        do {
                        if template == "/v1/check" {
                            var headers: [(String, String)] = []
                            if r.chance(4) == false { headers.append(("Tollgate-Service-Token", E2ETokens.service)) }
                            // Header values stay valid HTTP (visible ASCII): anything else is not a request.
                            let hostileHeader = Self.hostileStrings.filter { $0.utf8.allSatisfy { (0x20...0x7E).contains($0) } }
                            headers.append(("X-Api-Key", r.chance(2) ? key.secret : hostileHeader.randomElement(using: &r)!))
                            headers.append(("X-Request-Id", "fz-check-\(Int.random(in: 0...1000, using: &r))"))
                            if r.chance(2) { headers.append(("X-Tollgate-Usage", ["api_call=0", "api_call=1000", "x"].randomElement(using: &r)!)) }
                            let usage = r.chance(2) ? "" : "?usage=" + ["api_call%3D1", "api_call%3D-1", "x", "api_call%3D1e9", "", "api_call%3D0"].randomElement(using: &r)!
                            response = try await s.http.send("GET", path + usage, headers: headers)
                        } else if r.chance(10), method != "get" {
                            // Not JSON at all, or too large.
                            let raw = r.chance(2) ? Array("{\"request_id\": ".utf8) : Array(repeating: UInt8(ascii: "["), count: 2_000_000)
                            response = try await s.http.send(method.uppercased(), path, headers: [("Authorization", "Bearer \(token ?? "")"), ("Content-Type", "application/json")], body: raw)
                        } else {
                            response = try await s.request(method.uppercased(), path, token: token, body)
                        }
                        } catch {
                            failures.append("no answer: \(what) (body \(String(describing: body).prefix(200))): \(error)")
                            continue
                        }
                        counts[response.status, default: 0] += 1
                        contract.check("\(method.uppercased()) \(template)", response)
                        let label = "\(method.uppercased()) \(path.prefix(120)) as \(token.map { String($0.prefix(6)) } ?? "none") -> \(response.status) \(response.text.prefix(160))"
                        if response.status >= 500, !(response.status == 503 && response.errorCode == "engine_unavailable") {
                            failures.append(label)
                        }
                        // /v1/check answers a denial (a decision, which counts denials) with 401/403/429:
                        // only its 400 is an input error.
                        let inputError = template == "/v1/check" ? response.status == 400 : (400..<500).contains(response.status)
                        if inputError, !counting.contains(template), try await digest() != before {
                            failures.append("state changed on a 4xx: " + label)
                        }
                        // Redis is up all along: a 503 is a refusal to decide, and charges nothing.
                        if response.status == 503, try await digest() != before {
                            failures.append("state changed on a 503: " + label)
                        }
                        // A read changes nothing either.
                        if method == "get", template != "/v1/check", (200..<300).contains(response.status), !Self.readsThatWrite.contains(template), try await digest() != before {
                            failures.append("state changed on a read: " + label)
                        }
                    }
                }
            }
            let health = try await s.http.send("GET", "/healthz")
            #expect(health.status == 200, "the server did not survive the fuzzing")
            print("FIGURE http-fuzz: statuses \(counts.sorted { $0.key < $1.key })")
            #expect(failures.isEmpty, "seed \(seed):\n\(failures.prefix(15).joined(separator: "\n"))")
            // One line per route and status: the same gap is met many times.
            var gaps: [String: String] = [:]
            for problem in contract.problems { gaps[String(problem.prefix { $0 != ":" })] = gaps[String(problem.prefix { $0 != ":" })] ?? problem }
            #expect(contract.problems.isEmpty, "seed \(seed), answers that differ from openapi.json:\n\(gaps.values.sorted().joined(separator: "\n"))")
            // The fuzz reaches successes and refusals of every kind, not only one wall of errors.
            #expect(counts.keys.contains { (200..<300).contains($0) } && counts[400] != nil && counts[401] != nil && counts[404] != nil, "\(counts)")
            let audit = try await s.admin("GET", "/v1/audit")
            #expect(audit.value["clean"] == true, "\(audit)")
        }
    }
}
