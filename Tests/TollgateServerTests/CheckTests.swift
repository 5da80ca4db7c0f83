import Foundation
import Testing
import TollgateTestSupport

/// `GET /v1/check`, the header-only decision for nginx `auth_request`.
@Suite("/v1/check for nginx auth_request")
struct CheckTests {
    @Test("200 with account, balance and RateLimit headers; 401 for a missing, unknown or revoked key; 403 with a reason and Retry-After")
    func check() async throws {
        try await E2EServer.with { s in
            try await s.price("api_call", "0.25")
            try await s.price("tokens.input", "1", per: 1000, model: "m")
            try await s.account("acme", credit: "1")
            let key = try await s.key(for: "acme")
            // Five an hour: no allowance comes back while the test runs, however slow the machine.
            try await s.limits("/v1/keys/\(key.id)/limits", ["rph": 5])

            // The key in X-Api-Key, the default usage (api_call=1).
            let allowed = try await s.check([("X-Api-Key", key.secret), ("X-Request-Id", "c1")])
            #expect(allowed.status == 200, "\(allowed)")
            #expect(allowed.body.isEmpty)
            #expect(allowed.header("X-Tollgate-Account") == "acme")
            #expect(allowed.header("X-Tollgate-Balance") == "0.75")
            #expect(allowed.header("RateLimit-Limit") == "5")
            #expect(allowed.header("RateLimit-Remaining") == "4")
            #expect(allowed.header("RateLimit-Reset") == "720")  // a whole allowance again after 3600/5 s
            #expect(allowed.header("X-Tollgate-Reason") == nil && allowed.header("Retry-After") == nil)
            // The same request id again is the same decision, not a second charge.
            let replayed = try await s.check([("X-Api-Key", key.secret), ("X-Request-Id", "c1")])
            #expect(replayed.status == 200 && replayed.header("X-Tollgate-Balance") == "0.75")

            // The key as a bearer token, with the usage in the check URL: 200 tokens of m and a call.
            let usage = try await s.check([("Authorization", "Bearer \(key.secret)"), ("X-Request-Id", "c2")],
                                          usage: "tokens.input@m=200,api_call=1")
            #expect(usage.status == 200, "\(usage)")
            #expect(usage.header("X-Tollgate-Balance") == "0.3")

            // Out of credit: 403 with the reason; waiting does not help, so no Retry-After.
            let poor = try await s.check([("X-Api-Key", key.secret), ("X-Request-Id", "c3")], usage: "api_call=2")
            #expect(poor.status == 403)
            #expect(poor.header("X-Tollgate-Reason") == "insufficient_credit")
            #expect(poor.header("Retry-After") == nil)
            #expect(poor.header("X-Tollgate-Balance") == "0.3")

            // Rate limited: 403 with Retry-After in whole seconds.
            // (Replays and denials used no allowance: c1, c2 and these three are the five of the hour.)
            for n in 4...6 {
                #expect(try await s.check([("X-Api-Key", key.secret), ("X-Request-Id", "c\(n)")], usage: "tokens.input@m=1").status == 200)
            }
            let limited = try await s.check([("X-Api-Key", key.secret), ("X-Request-Id", "c6b")], usage: "tokens.input@m=1")
            #expect(limited.status == 403)
            #expect(limited.header("X-Tollgate-Reason") == "rate_limited")
            let retry = try #require(limited.header("Retry-After").flatMap { Int($0) }, "\(limited.headers)")
            #expect((1...720).contains(retry))
            #expect(limited.header("RateLimit-Remaining") == "0")

            // 401: no key, an unknown key, a revoked key; each says why.
            let missing = try await s.check([("X-Request-Id", "c7")])
            #expect(missing.status == 401 && missing.header("X-Tollgate-Reason") == "missing_key")
            let unknown = try await s.check([("X-Api-Key", "tgk_unknown"), ("X-Request-Id", "c8")])
            #expect(unknown.status == 401 && unknown.header("X-Tollgate-Reason") == "unknown_key")
            #expect(unknown.header("X-Tollgate-Account") == nil)
            let other = try await s.key(for: "acme")
            #expect(try await s.admin("DELETE", "/v1/keys/\(other.id)").status == 200)
            let revoked = try await s.check([("Authorization", "Bearer \(other.secret)"), ("X-Request-Id", "c9")])
            #expect(revoked.status == 401 && revoked.header("X-Tollgate-Reason") == "key_revoked")

            // Without the service token (or with another token) the check refuses to decide.
            let noService = try await s.check([("X-Api-Key", key.secret), ("X-Request-Id", "c10")], serviceToken: nil)
            #expect(noService.status == 401 && noService.header("X-Tollgate-Reason") == "invalid_service_token")
            let adminAsService = try await s.check([("X-Api-Key", key.secret), ("X-Request-Id", "c11")], serviceToken: E2ETokens.admin)
            #expect(adminAsService.status == 401 && adminAsService.header("X-Tollgate-Reason") == "invalid_service_token")

            // A malformed usage, a zero quantity, or the usage twice is a 400 with a JSON error.
            let bad = try await s.check([("X-Api-Key", key.secret)], usage: "api_call")
            #expect(bad.status == 400 && bad.errorCode == "invalid_argument")
            let zero = try await s.check([("X-Api-Key", key.secret), ("X-Request-Id", "c12")], usage: "api_call=0")
            #expect(zero.status == 400 && zero.errorCode == "invalid_argument")
            let twice = try await s.http.send("GET", "/v1/check?usage=api_call%3D1&usage=api_call%3D1",
                                              headers: [("X-Api-Key", key.secret), ("Tollgate-Service-Token", E2ETokens.service)])
            #expect(twice.status == 400 && twice.errorCode == "invalid_request", "\(twice)")

            // Nothing but the allowed checks was charged: 1 - 0.25 - 0.45 - 3 x 0.001.
            #expect(try await s.show("acme")["balance"] == "0.297")
            let ledger = try await s.admin("GET", "/v1/accounts/acme/ledger")
            // One debit entry per usage item: c1, c2 (two items), c4, c5, c6.
            let debits = ledger.value["entries"]?.array?.filter { $0["kind"] == "debit" } ?? []
            #expect(debits.map { $0["request_id"] } == ["c6", "c5", "c4", "c2", "c2", "c1"])
        }
    }

    @Test("what a check costs is the operator's: a caller's X-Tollgate-Usage header is never read, and a zero quantity is refused")
    func usageIsNotTheCallers() async throws {
        try await E2EServer.with { s in
            try await s.price("api_call", "0.25")
            try await s.price("cheap", "0.000001")
            try await s.account("acme")
            let key = try await s.key(for: "acme")
            // No credit: whatever usage the caller names in a header, the check charges api_call=1 and denies.
            for (n, hostile) in ["api_call=0", "cheap=1", "api_call=1000", "", "x"].enumerated() {
                let denied = try await s.check([("X-Api-Key", key.secret), ("X-Request-Id", "h\(n)"), ("X-Tollgate-Usage", hostile)])
                #expect(denied.status == 403 && denied.header("X-Tollgate-Reason") == "insufficient_credit", "\(hostile): \(denied)")
            }
            let credited = try await s.admin("POST", "/v1/accounts/acme/credits", ["amount": "1", "request_id": "topup-1"])
            try #require(credited.status == 200, "\(credited)")
            let allowed = try await s.check([("X-Api-Key", key.secret), ("X-Request-Id", "h9"), ("X-Tollgate-Usage", "cheap=1")])
            #expect(allowed.status == 200 && allowed.header("X-Tollgate-Balance") == "0.75", "\(allowed)")
            // A zero quantity is refused on the other gateway routes too.
            let zero = try await s.request("POST", "/v1/authorize", token: E2ETokens.service,
                                           ["account": "acme", "request_id": "z1", "usage": [["meter": "api_call", "quantity": 0]]])
            #expect(zero.status == 400 && zero.errorCode == "invalid_argument", "\(zero)")
            #expect(try await s.show("acme")["balance"] == "0.75")
        }
    }

    @Test("--deny-status 429: other denials use it, unknown and revoked keys stay 401")
    func denyStatus() async throws {
        try await E2EServer.with(arguments: ["--deny-status", "429"]) { s in
            try await s.price("api_call", "1")
            try await s.account("acme", credit: "1")
            let key = try await s.key(for: "acme")
            #expect(try await s.check([("X-Api-Key", key.secret), ("X-Request-Id", "a")]).status == 200)
            let denied = try await s.check([("X-Api-Key", key.secret), ("X-Request-Id", "b")])
            #expect(denied.status == 429)
            #expect(denied.header("X-Tollgate-Reason") == "insufficient_credit")
            #expect(try await s.admin("POST", "/v1/accounts/acme/freeze").status == 200)
            let frozen = try await s.check([("X-Api-Key", key.secret), ("X-Request-Id", "c")])
            #expect(frozen.status == 429 && frozen.header("X-Tollgate-Reason") == "account_frozen")
            let unknown = try await s.check([("X-Api-Key", "tgk_nope"), ("X-Request-Id", "d")])
            #expect(unknown.status == 401 && unknown.header("X-Tollgate-Reason") == "unknown_key")
        }
        // The flag takes 402, 403 or 429 only.
        let bad = try await CommandRunner.run(CommandRunner.product("tollgate"), ["serve", "--port", "0", "--deny-status", "500", "--redis", "redis://127.0.0.1:1"])
        #expect(bad.status == 2 && bad.stderr.contains("402, 403 or 429"), "\(bad.stderr)")
    }
}
