import Foundation
import Testing
import TollgateRedis
import TollgateTestSupport

/// Every error status with its JSON body `{"error": {"code", "message"}}`.
@Suite("errors: 400, 401, 403, 404, 409, 413, 503, as JSON")
struct ErrorTests {
    /// Expects an error response: the status, the code, a message, and nothing else in the body.
    static func expectError(_ response: TestHTTPResponse, _ status: Int, _ code: String, _ context: String = "",
                            sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(response.status == status, "\(context): \(response)", sourceLocation: sourceLocation)
        #expect(response.header("Content-Type") == "application/json", "\(context)", sourceLocation: sourceLocation)
        let message = response.value["error"]?["message"]?.string ?? ""
        #expect(response.value == ["error": ["code": .string(code), "message": .string(message)]], "\(context): \(response)",
                sourceLocation: sourceLocation)
        #expect(!message.isEmpty, "\(context)", sourceLocation: sourceLocation)
    }

    @Test("400: malformed JSON, unknown fields, wrong types, bad amounts, odd bytes in ids; and nothing changes")
    func badRequests() async throws {
        try await E2EServer.with { s in
            try await s.price("api_call", "0.5")
            try await s.account("acme", credit: "10")
            let admin = [("Authorization", "Bearer \(E2ETokens.admin)"), ("Content-Type", "application/json")]
            let service = [("Authorization", "Bearer \(E2ETokens.service)"), ("Content-Type", "application/json")]
            func raw(_ method: String, _ path: String, _ body: String, _ headers: [(String, String)]) async throws -> TestHTTPResponse {
                try await s.http.send(method, path, headers: headers, body: Array(body.utf8))
            }

            // Malformed JSON and non-objects.
            for body in ["{", "{\"id\": }", "not json", "[1, 2]", "\"acme\"", "{\"id\": \"x\"} trailing"] {
                Self.expectError(try await raw("POST", "/v1/accounts", body, admin), 400, "invalid_request", body)
            }
            // An empty body where fields are required: says which.
            let empty = try await raw("POST", "/v1/accounts", "", admin)
            Self.expectError(empty, 400, "invalid_request")
            #expect(empty.value["error"]?["message"]?.string?.contains("'id'") == true, "\(empty)")

            // Unknown fields, at the top and nested in usage items.
            let unknownTop = try await s.admin("POST", "/v1/accounts", ["id": "x", "colour": "red"])
            Self.expectError(unknownTop, 400, "invalid_request")
            #expect(unknownTop.value["error"]?["message"]?.string?.contains("colour") == true)
            let unknownNested = try await s.service("POST", "/v1/authorize", [
                "account": "acme", "request_id": "u1", "usage": [["meter": "api_call", "quantity": 1, "price": "0"]],
            ])
            Self.expectError(unknownNested, 400, "invalid_request")
            #expect(unknownNested.value["error"]?["message"]?.string?.contains("price") == true)
            for (path, body) in [("/v1/accounts/acme/credits", #"{"amount": "1", "request_id": "x", "memo": "hi"}"#),
                                 ("/v1/holds/h1.YWNtZQ/settle", #"{"request_id": "x", "extra": 1}"#)] {
                Self.expectError(try await raw("POST", path, body, path.hasPrefix("/v1/holds") ? service : admin), 400, "invalid_request", path)
            }
            Self.expectError(try await raw("PUT", "/v1/prices/api_call", #"{"price": "1", "currency": "USD"}"#, admin), 400, "invalid_request")
            Self.expectError(try await raw("PUT", "/v1/accounts/acme/limits", #"{"rpm": 1, "rpd": 2}"#, admin), 400, "invalid_request")

            // Wrong types and missing fields.
            Self.expectError(try await raw("POST", "/v1/accounts/acme/credits", #"{"amount": 10, "request_id": "x"}"#, admin), 400, "invalid_request")
            Self.expectError(try await raw("POST", "/v1/accounts/acme/credits", #"{"amount": "10"}"#, admin), 400, "invalid_request")
            Self.expectError(try await s.service("POST", "/v1/authorize", ["account": "acme", "request_id": "t", "usage": [["meter": "api_call", "quantity": "1"]]]),
                             400, "invalid_request")
            Self.expectError(try await s.service("POST", "/v1/authorize", ["account": "acme", "request_id": "t", "usage": [["meter": "api_call", "quantity": 1.5]]]),
                             400, "invalid_request")

            // Bad amounts: too many decimals, exponents, signs, words, beyond 2^53 micro-credits.
            for amount in ["1.0000001", "1e3", "-1", "+1", "NaN", "Infinity", "", " 1", "0x10", "9007199254.740993", "99999999999"] {
                let response = try await s.admin("POST", "/v1/accounts/acme/credits", ["amount": amount, "request_id": "bad-\(amount)"])
                Self.expectError(response, 400, "invalid_amount", "amount '\(amount)'")
            }
            Self.expectError(try await s.admin("POST", "/v1/accounts", ["id": "x", "credit_limit": "-2"]), 400, "invalid_amount")
            Self.expectError(try await s.admin("PUT", "/v1/prices/api_call", ["price": "0.0000001"]), 400, "invalid_amount")
            Self.expectError(try await s.admin("PUT", "/v1/accounts/acme/limits", ["daily_cap": "1e2"]), 400, "invalid_amount")
            Self.expectError(try await s.admin("POST", "/v1/accounts/acme/credits", ["amount": "1", "request_id": "k", "kind": "deposit"]), 400, "invalid_request")

            // Other invalid arguments.
            Self.expectError(try await s.service("POST", "/v1/authorize", ["account": "acme", "request_id": "t", "usage": [["meter": "api_call", "quantity": -1]]]),
                             400, "invalid_argument")
            Self.expectError(try await s.service("POST", "/v1/authorize", ["account": "acme", "request_id": "t", "usage": []]), 400, "invalid_argument")
            Self.expectError(try await s.service("POST", "/v1/authorize", ["request_id": "t", "usage": [["meter": "api_call", "quantity": 1]]]), 400, "invalid_request")
            Self.expectError(try await s.service("POST", "/v1/authorize", ["key": "k", "account": "acme", "request_id": "t", "usage": [["meter": "api_call", "quantity": 1]]]),
                             400, "invalid_request")
            Self.expectError(try await s.service("POST", "/v1/authorize", ["account": "acme", "request_id": "t", "mode": "later", "usage": [["meter": "api_call", "quantity": 1]]]),
                             400, "invalid_request")
            Self.expectError(try await s.service("POST", "/v1/authorize", ["account": "acme", "request_id": "t", "ttl_ms": 5, "usage": [["meter": "api_call", "quantity": 1]]]),
                             400, "invalid_request")
            Self.expectError(try await s.service("POST", "/v1/authorize", ["account": "acme", "request_id": "t", "mode": "hold", "ttl_ms": 0, "usage": [["meter": "api_call", "quantity": 1]]]),
                             400, "invalid_argument")
            Self.expectError(try await s.service("POST", "/v1/authorize", ["account": "acme", "request_id": String(repeating: "r", count: 257), "usage": [["meter": "api_call", "quantity": 1]]]),
                             400, "invalid_argument")
            Self.expectError(try await s.service("POST", "/v1/holds/h1.YWNtZQ/report", ["request_id": "x"]), 400, "invalid_request")
            Self.expectError(try await s.service("POST", "/v1/holds/h1.YWNtZQ/release", ["request_id": "x", "usage": [["meter": "api_call", "quantity": 1]]]),
                             400, "invalid_request")
            Self.expectError(try await s.admin("PUT", "/v1/prices/api_call", ["price": "1", "per": 0]), 400, "invalid_argument")
            Self.expectError(try await s.admin("PUT", "/v1/prices/bad%20meter", ["price": "1"]), 400, "invalid_argument")
            Self.expectError(try await s.admin("PUT", "/v1/accounts/acme/limits", ["rpm": -1]), 400, "invalid_argument")

            // Odd bytes in ids: control characters in a body id or a path, bad percent-encoding,
            // too long; malformed hold and key ids.
            for id in ["a\u{0}b", "tab\there", "line\nbreak", "del\u{7F}"] {
                Self.expectError(try await s.admin("POST", "/v1/accounts", ["id": id]), 400, "invalid_request", id.debugDescription)
            }
            Self.expectError(try await s.admin("POST", "/v1/accounts", ["id": ""]), 400, "invalid_argument")
            Self.expectError(try await s.admin("POST", "/v1/accounts", ["id": String(repeating: "x", count: 257)]), 400, "invalid_argument")
            let paths = [("/v1/accounts/a%00b", "invalid_request"), ("/v1/accounts/a%0Ab", "invalid_request"),
                         ("/v1/accounts/a%7F", "invalid_request"), ("/v1/accounts/a%zz", "invalid_request"),
                         ("/v1/accounts/%FF%FE", "invalid_request"), ("/v1/accounts/a%00b/ledger", "invalid_request"),
                         ("/v1/accounts/\(String(repeating: "x", count: 257))", "invalid_argument")]
            for (path, code) in paths {
                Self.expectError(try await s.admin("GET", path), 400, code, path)
            }
            Self.expectError(try await s.service("POST", "/v1/holds/not-a-hold/settle", ["request_id": "x"]), 400, "invalid_argument")
            Self.expectError(try await s.service("POST", "/v1/holds/h1.%00/release"), 400, "invalid_request")
            Self.expectError(try await s.admin("DELETE", "/v1/keys/nope"), 400, "invalid_argument")
            Self.expectError(try await s.admin("PUT", "/v1/keys/key_TOOSHORT/limits", ["rpm": 1]), 400, "invalid_argument")

            // None of it changed anything.
            #expect(try await s.show("acme") == ["id": "acme", "status": "active", "balance": "10", "paid": "10", "promotional": "0", "held": "0", "available": "10", "credit_limit": "0"])
            #expect(try await s.admin("GET", "/v1/accounts/acme/ledger").value["entries"]?.array?.count == 1)
            #expect(try await s.admin("GET", "/v1/audit").value["accounts_checked"] == 1)
        }
    }

    @Test("401 without a known bearer token, 403 for the wrong kind of token, 404, 409")
    func authAndConflicts() async throws {
        try await E2EServer.with { s in
            try await s.account("acme", credit: "1")
            for token in [nil, "", "nope", "tga_unknown_account_token", E2ETokens.admin + "x"] as [String?] {
                var headers: [(String, String)] = []
                if let token { headers.append(("Authorization", "Bearer \(token)")) }
                let response = try await s.http.send("GET", "/v1/accounts/acme", headers: headers)
                Self.expectError(response, 401, "unauthorized", token ?? "no token")
                #expect(response.header("WWW-Authenticate") == "Bearer")
            }
            // Not a bearer scheme.
            Self.expectError(try await s.http.send("GET", "/v1/audit", headers: [("Authorization", "Basic \(E2ETokens.admin)")]), 401, "unauthorized")
            // The scheme is case-insensitive.
            #expect(try await s.http.send("GET", "/v1/audit", headers: [("Authorization", "bearer \(E2ETokens.admin)")]).status == 200)
            // Without a token the answer is 401 before the path is looked at.
            Self.expectError(try await s.http.send("GET", "/v1/accounts/a%00b"), 401, "unauthorized")

            Self.expectError(try await s.service("GET", "/v1/audit"), 403, "forbidden")
            Self.expectError(try await s.admin("POST", "/v1/authorize", ["account": "acme", "request_id": "x", "usage": [["meter": "api_call", "quantity": 1]]]),
                             403, "forbidden")

            Self.expectError(try await s.admin("GET", "/v1/accounts/nobody"), 404, "account_not_found")
            Self.expectError(try await s.admin("GET", "/v1/accounts/nobody/ledger"), 404, "account_not_found")
            Self.expectError(try await s.admin("GET", "/v1/accounts/nobody/keys"), 404, "account_not_found")
            Self.expectError(try await s.admin("POST", "/v1/accounts/nobody/keys"), 404, "account_not_found")
            Self.expectError(try await s.admin("POST", "/v1/accounts/nobody/tokens"), 404, "account_not_found")
            Self.expectError(try await s.admin("POST", "/v1/accounts/nobody/freeze"), 404, "account_not_found")
            Self.expectError(try await s.admin("POST", "/v1/accounts/nobody/credits", ["amount": "1", "request_id": "x"]), 404, "account_not_found")
            Self.expectError(try await s.admin("PUT", "/v1/accounts/nobody/limits", ["rpm": 1]), 404, "account_not_found")
            Self.expectError(try await s.admin("DELETE", "/v1/keys/key_0000000000000000"), 404, "key_not_found")
            Self.expectError(try await s.admin("PUT", "/v1/keys/key_0000000000000000/limits", ["rpm": 1]), 404, "key_not_found")
            Self.expectError(try await s.service("POST", "/v1/authorize", ["account": "nobody", "request_id": "x", "usage": [["meter": "api_call", "quantity": 1]]]),
                             404, "account_not_found")
            Self.expectError(try await s.admin("GET", "/v1/nothing"), 404, "not_found")
            Self.expectError(try await s.http.send("GET", "/nothing"), 404, "not_found")
            Self.expectError(try await s.http.send("GET", "/dashboard/nothing.js"), 404, "not_found")
            Self.expectError(try await s.admin("DELETE", "/v1/accounts/acme"), 404, "not_found")

            Self.expectError(try await s.admin("POST", "/v1/accounts", ["id": "acme"]), 409, "account_exists")
            #expect(try await s.admin("POST", "/v1/accounts/acme/credits", ["amount": "1", "request_id": "once"]).status == 200)
            Self.expectError(try await s.admin("POST", "/v1/accounts/acme/credits", ["amount": "2", "request_id": "once"]), 409, "idempotency_conflict")
            #expect(try await s.show("acme")["balance"] == "2")
        }
    }

    @Test("413 for a body over 64 KiB; a body of exactly 64 KiB is read")
    func bodyLimit() async throws {
        try await E2EServer.with { s in
            let headers = [("Authorization", "Bearer \(E2ETokens.admin)"), ("Content-Type", "application/json")]
            func padded(_ json: String, to size: Int) -> [UInt8] {
                Array(json.utf8) + Array(repeating: UInt8(ascii: " "), count: size - json.utf8.count)
            }
            let exact = try await s.http.send("POST", "/v1/accounts", headers: headers, body: padded(#"{"id": "fits"}"#, to: 64 * 1024))
            #expect(exact.status == 201, "\(exact)")
            let over = try await s.http.send("POST", "/v1/accounts", headers: headers, body: padded(#"{"id": "big"}"#, to: 64 * 1024 + 1))
            Self.expectError(over, 413, "body_too_large")
            let huge = try await s.http.send("POST", "/v1/authorize", headers: [("Authorization", "Bearer \(E2ETokens.service)")],
                                             body: padded(#"{"account": "fits"}"#, to: 1024 * 1024))
            Self.expectError(huge, 413, "body_too_large")
            Self.expectError(try await s.admin("GET", "/v1/accounts/big"), 404, "account_not_found")
            // The server is still fine.
            #expect(try await s.http.send("GET", "/healthz").status == 200)
        }
    }

    @Test("readiness says lua_mismatch when Redis runs other Lua, from the library's fingerprint",
          .enabled(if: !TestRedis.isCluster, "replaces the one Redis's library"))
    func readinessSeesOtherLua() async throws {
        try await E2EServer.with { s in
            #expect(try await s.http.send("GET", "/readyz").value == ["status": "ready"])
            let redis = s.redis.client(connections: 1)
            defer { redis.close() }
            // Another library under the same name, with a fingerprint function answering wrongly.
            var load = RedisCommand("FUNCTION")
            for word in ["LOAD", "REPLACE", "#!lua name=tollgate\nredis.register_function{function_name = 'library_fingerprint', flags = {'no-writes'}, callback = function() return 'other' end}\n"] {
                load.append(word)
            }
            _ = try await redis.send(load)
            let readiness = try await s.http.send("GET", "/readyz")
            #expect(readiness.status == 503 && readiness.value == ["status": "lua_mismatch"], "\(readiness)")
        }
    }

    @Test("503 when Redis stops mid-run (readiness too), and recovery when it is back",
          .enabled(if: !TestRedis.isCluster, "stops and restarts the one Redis"))
    func redisDown() async throws {
        try await E2EServer.with(persistentRedis: true) { s in
            try await s.price("api_call", "0.5")
            try await s.account("acme", credit: "10")
            let key = try await s.key(for: "acme")
            let token = try await s.accountToken(for: "acme")
            #expect(try await s.http.send("GET", "/readyz").value == ["status": "ready"])

            s.redis.stop()
            let readiness = try await s.http.send("GET", "/readyz")
            #expect(readiness.status == 503 && readiness.value == ["status": "redis_unavailable"])
            #expect(try await s.http.send("GET", "/healthz").status == 200)
            let usage: [[String: Any]] = [["meter": "api_call", "quantity": 1]]
            Self.expectError(try await s.service("POST", "/v1/authorize", ["key": key.secret, "request_id": "d1", "usage": usage]), 503, "engine_unavailable")
            Self.expectError(try await s.service("POST", "/v1/authorize", ["account": "acme", "request_id": "d2", "usage": usage]), 503, "engine_unavailable")
            Self.expectError(try await s.check([("X-Api-Key", key.secret), ("X-Request-Id", "d3")]), 503, "engine_unavailable")
            Self.expectError(try await s.admin("GET", "/v1/accounts/acme"), 503, "engine_unavailable")
            Self.expectError(try await s.admin("POST", "/v1/accounts/acme/credits", ["amount": "1", "request_id": "d4"]), 503, "engine_unavailable")
            // An account token cannot be checked without Redis either: 503, not 401.
            Self.expectError(try await s.request("GET", "/v1/accounts/acme", token: token), 503, "engine_unavailable")
            let metrics = try await s.http.send("GET", "/metrics")
            #expect(metrics.status == 200 && metrics.text.contains(#"tollgate_redis_errors_total{kind="unavailable"}"#), "\(metrics.text)")

            // Redis back (its data kept): the server recovers by itself.
            try await s.redis.start()
            let deadline = ContinuousClock.now + .seconds(30)
            while try await s.http.send("GET", "/readyz").status != 200, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(try await s.http.send("GET", "/readyz").value == ["status": "ready"])
            let again = try await s.authorize(["key": key.secret, "request_id": "d1", "usage": usage])
            #expect(again["allowed"] == true && again["balance"] == "9.5")
        }
    }
}
