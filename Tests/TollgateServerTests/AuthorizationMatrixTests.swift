import Crypto
import Foundation
import Testing
import TollgateServer
import TollgateTestSupport

/// Every route × every kind of caller gets the status its access rule, as the router holds
/// it, says; and every route the router serves has a rule.
@Suite("authorization matrix")
struct AuthorizationMatrixTests {
    enum Caller: String, CaseIterable, CustomStringConvertible {
        case none, unknown, admin, service, own, other
        var description: String { rawValue }
    }

    /// The callers a rule lets through, written here apart from the server's own check.
    static func allowed(by access: Access) -> Set<Caller> {
        switch access {
        case .open: return Set(Caller.allCases)
        case .anyToken: return [.admin, .service, .own, .other]
        case .admin: return [.admin]
        case .service: return [.service]
        case .adminOrOwner, .adminOrOwnerMetered: return [.admin, .own]
        case .routeCredential: return []
        }
    }

    struct Route: CustomStringConvertible {
        let method: String
        let path: String
        let body: [String: Any]?
        /// The status of an allowed call.
        let success: Int
        /// A different body for some callers: where each allowed call needs its own (one coupon
        /// code each, as an account redeems a code once).
        var bodies: [Caller: [String: Any]] = [:]
        /// A different path for some callers: where each allowed call needs its own target
        /// (one token each to revoke).
        var paths: [Caller: String] = [:]
        var description: String { "\(method) \(path)" }
    }

    /// Whether a concrete request path (its query ignored) fits a router path template, where a
    /// `{name}` segment stands for any one segment.
    static func path(_ path: String, matches template: String) -> Bool {
        let concrete = path.split(separator: "?", maxSplits: 1)[0].split(separator: "/", omittingEmptySubsequences: false)
        let pattern = template.split(separator: "/", omittingEmptySubsequences: false)
        return concrete.count == pattern.count && zip(concrete, pattern).allSatisfy { segment, expected in
            (expected.hasPrefix("{") && expected.hasSuffix("}") && !segment.isEmpty) || segment == expected
        }
    }

    /// A token's id: `tok_` and its SHA-256, as the API names it.
    static func tokenID(_ token: String) -> String {
        "tok_" + SHA256.hash(data: Array(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    @Test("every route × {no token, unknown token, admin, service, this account's token, another account's token}")
    func matrix() async throws {
        // A deposit address, so deposits can be started; a MoonPay webhook key, so webhooks are verified.
        let environment = ["TOLLGATE_DEPOSIT_ADDRESS_USDT": "TRON:TXYZ123", "TOLLGATE_MOONPAY_WEBHOOK_KEY": "whkey"]
        try await E2EServer.with(environment: environment) { s in
            try await s.price("api_call", "0.01")
            try await s.account("acme", credit: "10")
            try await s.account("other", credit: "10")
            let limitedKey = try await s.key(for: "acme")
            let doomedKey = try await s.key(for: "acme")
            // Tokens to revoke: one each for the admin and acme's own token, and an account whose
            // tokens all go.
            let doomedTokens = [try await s.accountToken(for: "acme"), try await s.accountToken(for: "acme")].map(Self.tokenID)
            try await s.account("spare")
            _ = try await s.accountToken(for: "spare")
            let tokens: [Caller: String] = [
                .unknown: "tga_not_a_token_of_anyone",
                .admin: E2ETokens.admin,
                .service: E2ETokens.service,
                .own: try await s.accountToken(for: "acme"),
                .other: try await s.accountToken(for: "other"),
            ]
            // Three holds for the follow-ups.
            var holds: [String] = []
            for n in 0..<3 {
                let hold = try await s.authorize(["account": "acme", "request_id": "hold-\(n)", "mode": "hold",
                                                  "usage": [["meter": "api_call", "quantity": 1]]])
                holds.append(try #require(hold["hold_id"]?.string))
            }
            // A coupon code for each allowed redemption (admin, acme's own token).
            let coupons = try await s.admin("POST", "/v1/coupons", ["amount": "1", "count": 2, "expires": "2099-01-01"])
            let codes = coupons.value["codes"]?.array?.compactMap(\.string) ?? []
            try #require(coupons.status == 201 && codes.count == 2, "\(coupons)")
            let usage: [[String: Any]] = [["meter": "api_call", "quantity": 1]]
            let deposit: [String: Any] = ["amount": "5", "token": "USDT", "provider": "moonpay"]
            let routes: [Route] = [
                Route(method: "POST", path: "/v1/authorize", body: ["account": "acme", "request_id": "m-auth", "usage": usage], success: 200),
                Route(method: "POST", path: "/v1/holds/\(holds[0])/report", body: ["request_id": "m-report", "usage": usage], success: 200),
                Route(method: "POST", path: "/v1/holds/\(holds[1])/settle", body: ["request_id": "m-settle"], success: 200),
                Route(method: "POST", path: "/v1/holds/\(holds[2])/release", body: ["request_id": "m-release"], success: 200),
                Route(method: "POST", path: "/v1/accounts", body: ["id": "m-new"], success: 201),
                Route(method: "GET", path: "/v1/accounts/acme", body: nil, success: 200),
                Route(method: "POST", path: "/v1/accounts/acme/freeze", body: nil, success: 200),
                Route(method: "POST", path: "/v1/accounts/acme/unfreeze", body: nil, success: 200),
                Route(method: "POST", path: "/v1/accounts/acme/credits", body: ["amount": "1", "request_id": "m-credit"], success: 200),
                Route(method: "POST", path: "/v1/accounts/acme/keys", body: nil, success: 201),
                Route(method: "GET", path: "/v1/accounts/acme/keys", body: nil, success: 200),
                Route(method: "DELETE", path: "/v1/keys/\(doomedKey.id)", body: nil, success: 200),
                Route(method: "PUT", path: "/v1/prices/m.meter", body: ["price": "1"], success: 200),
                Route(method: "GET", path: "/v1/prices", body: nil, success: 200),
                Route(method: "PUT", path: "/v1/accounts/acme/limits", body: ["rpm": 1000], success: 200),
                Route(method: "PUT", path: "/v1/keys/\(limitedKey.id)/limits", body: ["rpm": 1000], success: 200),
                Route(method: "GET", path: "/v1/accounts/acme/ledger", body: nil, success: 200),
                Route(method: "GET", path: "/v1/audit", body: nil, success: 200),
                Route(method: "POST", path: "/v1/accounts/acme/tokens", body: nil, success: 201),
                Route(method: "GET", path: "/v1/accounts/acme/tokens", body: nil, success: 200),
                Route(method: "DELETE", path: "/v1/accounts/acme/tokens/\(doomedTokens[0])", body: nil, success: 200,
                      paths: [.own: "/v1/accounts/acme/tokens/\(doomedTokens[1])"]),
                Route(method: "DELETE", path: "/v1/accounts/spare/tokens", body: nil, success: 200),
                Route(method: "POST", path: "/v1/coupons", body: ["amount": "1", "expires": "2099-01-01"], success: 201),
                Route(method: "POST", path: "/v1/accounts/acme/redeem", body: ["code": codes[0]], success: 200,
                      bodies: [.admin: ["code": codes[0]], .own: ["code": codes[1]]]),
                Route(method: "POST", path: "/v1/accounts/acme/grants", body: ["amount": "1", "expires": "2099-01-01", "request_id": "m-grant"],
                      success: 200),
                Route(method: "GET", path: "/v1/accounts/acme/payments", body: nil, success: 200),
                Route(method: "GET", path: "/v1/accounts/acme/usage?by=meter,day", body: nil, success: 200),
                Route(method: "GET", path: "/v1/accounts/acme/reports/transactions.csv", body: nil, success: 200),
                Route(method: "GET", path: "/v1/accounts/acme/reports/transactions.json", body: nil, success: 200),
                Route(method: "GET", path: "/v1/accounts/acme/reports/usage.csv", body: nil, success: 200),
                Route(method: "GET", path: "/v1/accounts/acme/reports/usage.json", body: nil, success: 200),
                Route(method: "POST", path: "/v1/accounts/acme/deposits", body: deposit, success: 201),
                Route(method: "GET", path: "/v1/accounts/acme/deposits", body: nil, success: 200),
                Route(method: "GET", path: "/healthz", body: nil, success: 200),
                Route(method: "GET", path: "/readyz", body: nil, success: 200),
                Route(method: "GET", path: "/metrics", body: nil, success: 200),
                Route(method: "GET", path: "/openapi.json", body: nil, success: 200),
                // Live streams and the dashboard (the SSE routes are checked below, as streams).
                Route(method: "PUT", path: "/v1/accounts/acme/alerts", body: ["low_balance": "1"], success: 200),
                // A plain GET is not an upgrade: an allowed caller is told so (400), after the check.
                Route(method: "GET", path: "/v1/accounts/acme/ws", body: nil, success: 400),
                Route(method: "GET", path: "/v1/accounts", body: nil, success: 200),
                Route(method: "GET", path: "/v1/whoami", body: nil, success: 200),
                Route(method: "GET", path: "/", body: nil, success: 200),
                Route(method: "GET", path: "/dashboard/app.js", body: nil, success: 200),
            ]

            // Who may call each route comes from the router's own table, matched by path template.
            let served = try OpenAPITests.servedTable()
            let unruled = served.filter { $0.access == nil }
            #expect(unruled.isEmpty, "routes registered without an access rule: \(unruled)")
            func access(_ method: String, _ path: String) throws -> Access {
                let rule = served.first { $0.method == method && Self.path(path, matches: $0.path) }?.access
                return try #require(rule, "\(method) \(path) is served without an access rule")
            }
            func expected(_ access: Access, _ success: Int, _ caller: Caller) -> Int {
                if Self.allowed(by: access).contains(caller) { return success }
                return caller == .none || caller == .unknown ? 401 : 403
            }
            func expected(_ route: Route, _ caller: Caller) throws -> Int {
                expected(try access(route.method, route.path), route.success, caller)
            }

            // What the matrix called, to check below that it covers every route the router serves.
            var called: [(method: String, path: String)] = []
            var mismatches: [String] = []
            for route in routes {
                // Callers that must be refused go first, so a route's one allowed call finds the
                // state it expects (and a refused call has nothing to undo).
                let refusedFirst = try Caller.allCases.map { (caller: $0, want: try expected(route, $0)) }.sorted { ($0.want >= 400 ? 0 : 1) < ($1.want >= 400 ? 0 : 1) }
                for (caller, want) in refusedFirst {
                    called.append((route.method, route.paths[caller] ?? route.path))
                    let response = try await s.request(route.method, route.paths[caller] ?? route.path, token: tokens[caller], route.bodies[caller] ?? route.body)
                    if response.status != want {
                        mismatches.append("\(route) as \(caller): \(response.status), expected \(want): \(response.text.prefix(200))")
                    }
                    if want == 401 {
                        #expect(response.errorCode == "unauthorized" && response.header("WWW-Authenticate") == "Bearer", "\(route) as \(caller)")
                    } else if want == 403 {
                        #expect(response.errorCode == "forbidden", "\(route) as \(caller)")
                    }
                }
            }
            #expect(mismatches.isEmpty, "\(mismatches.joined(separator: "\n"))")

            // The event streams (SSE), read as streams: an allowed caller gets 200 and the stream,
            // anyone else 401/403 at once. The account stream is the account's (or the admin's);
            // the firehose of every account is the admin's only.
            for path in ["/v1/accounts/acme/events", "/v1/events"] {
                called.append(("GET", path))
                let rule = try access("GET", path)
                for caller in Caller.allCases {
                    let want = expected(rule, 200, caller)
                    let sse = try SSEStreams(port: s.port, path: path, token: tokens[caller])
                    let deadline = ContinuousClock.now + .seconds(30)
                    while sse.status() == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
                    #expect(sse.status() == want, "GET \(path) as \(caller): \(sse.status()), expected \(want)")
                    sse.close()
                }
            }

            // /v1/check authenticates the gateway by its own header, Tollgate-Service-Token
            // (Authorization carries the end user's key): only the service token gets a decision.
            let key = try await s.key(for: "acme")
            #expect(try access("GET", "/v1/check") == .routeCredential(.serviceTokenHeader))
            called.append(("GET", "/v1/check"))
            for caller in Caller.allCases {
                let response = try await s.check([("X-Api-Key", key.secret), ("X-Request-Id", "m-check-\(caller)")], serviceToken: tokens[caller])
                if caller == .service {
                    #expect(response.status == 200, "\(response)")
                } else {
                    #expect(response.status == 401 && response.header("X-Tollgate-Reason") == "invalid_service_token", "as \(caller): \(response)")
                }
            }

            // A provider's webhook takes no bearer token: whatever token comes along, an unsigned
            // delivery is refused by its signature (401 missing_signature), and changes nothing.
            #expect(try access("POST", "/v1/webhooks/moonpay") == .routeCredential(.providerSignature))
            let event = Array(#"{"type":"transaction_updated","data":{"id":"m-tx","status":"completed","externalTransactionId":"dep_x.YWNtZQ","quoteCurrencyAmount":5,"currency":{"code":"usdt_trx"}}}"#.utf8)
            for caller in Caller.allCases {
                var headers = [("Content-Type", "application/json")]
                if let token = tokens[caller] { headers.append(("Authorization", "Bearer \(token)")) }
                let response = try await s.http.send("POST", "/v1/webhooks/moonpay", headers: headers, body: event)
                #expect(response.status == 401 && response.errorCode == "missing_signature", "as \(caller): \(response)")
                #expect(response.header("WWW-Authenticate") == nil, "as \(caller)")
            }
            called.append(("POST", "/v1/webhooks/moonpay"))

            // A route the router serves and this matrix does not call would have no access check
            // at all: every served route (its path template) is matched by a call above.
            let uncovered = served.filter { route in !called.contains { Self.path($0.path, matches: route.path) && $0.method == route.method } }
            #expect(uncovered.isEmpty, "served routes the authorization matrix does not call: \(uncovered)")

            // Refused calls changed nothing: the only changes are the allowed ones.
            let account = try await s.show("acme")
            #expect(account["status"] == "active")
            #expect(try await s.show("other")["balance"] == "10")
            #expect(try await s.admin("GET", "/v1/accounts/acme/keys").value.array?.count == 4)
            let entries = try await s.admin("GET", "/v1/accounts/acme/ledger?limit=100").value["entries"]?.array ?? []
            #expect(entries.filter { $0["request_id"] == "m-credit" }.count == 1)
            #expect(entries.filter { $0["request_id"] == "m-grant" }.count == 1)
            #expect(entries.filter { $0["kind"] == "coupon" }.count == 2)
            #expect(entries.filter { $0["kind"] == "deposit" }.isEmpty)
            let deposits = try await s.admin("GET", "/v1/accounts/acme/deposits").value["deposits"]?.array ?? []
            #expect(deposits.count == 2 && deposits.allSatisfy { $0["status"] == "pending" }, "\(deposits)")
            #expect(try await s.admin("GET", "/v1/accounts/other/deposits").value["deposits"]?.array?.isEmpty == true)
            #expect(entries.filter { $0["request_id"] == "m-auth" }.count == 1)
            #expect(entries.filter { $0["request_id"]?.string?.hasPrefix("m-check-") == true }.count == 1)
        }
    }
}
