import Crypto
import Foundation
import Testing
import Logging
import TollgateCore
import TollgatePayments
import TollgateRedis
import TollgateServer
import TollgateTestSupport

/// `GET /openapi.json` against what the server really does.
@Suite("OpenAPI document")
struct OpenAPITests {
    /// Every route the server has, as `METHOD /path/{template}`, with the document's security
    /// schemes for it: made from the router's access rules, so the document is held to them.
    static let routes: [String: [String]] = {
        // A table that cannot be read fails every test that uses it (an empty table matches no route).
        guard let served = try? servedTable() else { return [:] }
        return Dictionary(uniqueKeysWithValues: served.map { ($0.description, $0.access.map(securitySchemes) ?? ["no access rule"]) })
    }()

    /// The security schemes openapi.json must list for a route with `access`.
    static func securitySchemes(_ access: Access) -> [String] {
        switch access {
        case .open, .routeCredential(.providerSignature): return []
        case .routeCredential(.serviceTokenHeader): return ["checkServiceToken"]
        case .routeCredential(.apiKey): return ["apiKey"]
        case .service: return ["serviceToken"]
        case .admin: return ["adminToken"]
        case .adminOrOwner, .adminOrOwnerMetered: return ["adminToken", "accountToken"]
        case .anyToken: return ["adminToken", "serviceToken", "accountToken"]
        }
    }

    /// The OpenAI-compatible proxy's routes, served only with `--openai-upstream`. They are
    /// not in openapi.json on purpose: their contract is OpenAI's API (requests and answers as
    /// the upstream defines them, relayed unchanged), which the document cannot describe for
    /// every upstream, and a server without an upstream (the one the contract tests fuzz) does
    /// not serve them. docs/PROXY.md describes them; OpenAIProxyTests drive them with the SDK.
    static let proxyRoutes: Set<String> = [
        "POST /openai/v1/chat/completions", "POST /openai/v1/completions", "POST /openai/v1/embeddings",
        "GET /openai/v1/models", "GET /openai/v1/models/{model}",
    ]

    /// The routes the server's router has, read from the router itself (no server runs: the
    /// engine's Redis is never called).
    static func servedRoutes(openAI: OpenAIProxy? = nil) throws -> Set<String> {
        Set(try servedTable(openAI: openAI).map(\.description))
    }

    /// A client for a Redis nobody listens on: routes are built, never called.
    static func unreachableRedis() throws -> RedisClient {
        RedisClient(configuration: RedisConfiguration(address: try RedisAddress(parsing: "redis://127.0.0.1:1")))
    }

    /// The router's routes with their access rules, from a server that is built, never started.
    static func servedTable(openAI: OpenAIProxy? = nil) throws -> [ServedRoute] {
        let redis = try unreachableRedis()
        let directory = FileManager.default.temporaryDirectory
        var configuration = ServerConfiguration(
            host: "127.0.0.1", port: 0, tokens: try ServerTokens.load(admin: "tgadm_routes", service: "tgsvc_routes", directory: directory),
            payments: try PaymentsConfiguration())
        configuration.openAI = openAI
        let events = EventHub(redis: RedisConfiguration(address: try RedisAddress(parsing: "redis://127.0.0.1:1")), logger: Logger(label: "routes"))
        return TollgateHTTPServer.routes(engine: Engine(redis: redis), configuration: configuration, events: events)
    }

    @Test("the table of routes the document is checked against is read from the router, each with its access rule")
    func routeTableIsTheRouters() throws {
        let served = try Self.servedRoutes()
        #expect(served.count >= 44, "\(served.sorted())")
        #expect(Set(Self.routes.keys) == served)
        #expect(!Self.routes.values.contains(["no access rule"]), "\(Self.routes.filter { $0.value == ["no access rule"] }.keys.sorted())")
    }

    @Test("with --openai-upstream the router adds exactly the proxy's routes, which the document leaves to OpenAI's API")
    func proxyRoutesAreTheOnlyAddition() async throws {
        let proxy = OpenAIProxy(configuration: OpenAIProxyConfiguration(
            upstreams: OpenAIUpstreamTable(defaultUpstream: try OpenAIUpstream(baseURL: "http://127.0.0.1:1/v1", apiKey: nil))))
        let withProxy = try Self.servedRoutes(openAI: proxy)
        try await proxy.client.shutdown()
        let without = try Self.servedRoutes()
        #expect(withProxy.subtracting(without) == Self.proxyRoutes, "\(withProxy.subtracting(without).sorted())")
        #expect(without.isSubset(of: withProxy))
        let document = try JSONSerialization.jsonObject(with: Data(try Self.repositoryDocument())) as? [String: Any]
        let paths = (document?["paths"] as? [String: Any])?.keys ?? [:].keys
        #expect(!paths.contains { $0.hasPrefix("/openai/") }, "the proxy's routes are OpenAI's, not in openapi.json")
    }

    /// What the contract test's server is started with: a USDT deposit address and a MoonPay
    /// webhook key (AlchemyPay stays unconfigured).
    static let webhookKey = "whkey"
    static let environment = ["TOLLGATE_DEPOSIT_ADDRESS_USDT": "TRON:TXYZ123", "TOLLGATE_MOONPAY_WEBHOOK_KEY": webhookKey]

    /// Headers of a MoonPay webhook: `Moonpay-Signature-V2: t=<unix seconds>,s=<lowercase hex
    /// HMAC-SHA256(key, "<t>.<raw body>")>`, computed here with swift-crypto.
    static func moonPayHeaders(_ body: [UInt8], key: String = webhookKey) -> [(String, String)] {
        let time = Int(Date().timeIntervalSince1970)
        let mac = HMAC<SHA256>.authenticationCode(for: Array("\(time).".utf8) + body, using: SymmetricKey(data: Array(key.utf8)))
        let hex = mac.map { String(format: "%02x", $0) }.joined()
        return [("Content-Type", "application/json"), ("Moonpay-Signature-V2", "t=\(time),s=\(hex)")]
    }

    /// A MoonPay `transaction_updated` event for `deposit`.
    static func moonPayEvent(_ deposit: String, status: String = "completed", amount: String = "50", transaction: String = "tx1") -> [UInt8] {
        Array(#"{"type":"transaction_updated","data":{"id":"\#(transaction)","status":"\#(status)","externalTransactionId":"\#(deposit)","quoteCurrencyAmount":\#(amount),"currency":{"code":"usdt_trx"},"walletAddress":"TXYZ123"}}"#.utf8)
    }

    /// The document as the repository keeps it.
    static func repositoryDocument() throws -> [UInt8] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources/TollgateServer/Resources/openapi.json")
        return Array(try Data(contentsOf: url))
    }

    @Test("the served document is the repository's: OpenAPI 3.1, every route with its security, closed request bodies, every $ref resolves")
    func document() async throws {
        try await E2EServer.with { s in
            let served = try await s.http.send("GET", "/openapi.json")
            #expect(served.status == 200 && served.header("Content-Type") == "application/json")
            #expect(served.body == (try Self.repositoryDocument()))
            let document = served.value
            let validator = JSONSchemaValidator(document: document)
            #expect(document["openapi"] == "3.1.0")
            #expect(document["info"]?["title"] == "Tollgate")

            // Exactly the server's routes.
            var operations: [String: JSONValue] = [:]
            for (path, item) in document["paths"]?.object ?? [:] {
                for (method, operation) in item.object ?? [:] where method != "parameters" {
                    operations["\(method.uppercased()) \(path)"] = operation
                }
            }
            #expect(Set(operations.keys) == Set(Self.routes.keys), "documented \(operations.keys.sorted()), served \(Self.routes.keys.sorted())")

            // Security as the server enforces it.
            let schemes = document["components"]?["securitySchemes"]
            for name in ["adminToken", "serviceToken", "accountToken"] {
                #expect(schemes?[name]?["type"] == "http" && schemes?[name]?["scheme"] == "bearer", "\(name)")
            }
            #expect(schemes?["checkServiceToken"]?["in"] == "header" && schemes?["checkServiceToken"]?["name"] == "Tollgate-Service-Token")
            for (route, expected) in Self.routes {
                let security = operations[route]?["security"]?.array?.compactMap { $0.object?.keys.first } ?? []
                #expect(security == expected, "\(route): \(security)")
            }

            // Every $ref resolves; schemas use only what the validator checks.
            #expect(validator.documentProblems(document) == [])
            for (name, schema) in document["components"]?["schemas"]?.object ?? [:] {
                #expect(validator.schemaProblems(schema, at: "#/components/schemas/\(name)") == [])
            }
            // Request bodies are closed (additionalProperties: false), as the server refuses unknown fields.
            for (route, operation) in operations {
                guard let body = operation["requestBody"]?["content"]?["application/json"]?["schema"] else { continue }
                let schema = try #require(validator.dereference(body))
                #expect(schema["additionalProperties"] == false, "\(route)")
            }
            // Every response is described, errors with the error shape.
            let error = try #require(validator.resolve("#/components/schemas/Error"))
            #expect(error["properties"]?["error"]?["required"] == ["code", "message"])
            for (route, operation) in operations {
                #expect(operation["responses"]?["200"] != nil || operation["responses"]?["201"] != nil, "\(route)")
                for (status, response) in operation["responses"]?.object ?? [:] where status.hasPrefix("4") || status.hasPrefix("5") {
                    guard let schema = validator.dereference(response)?["content"]?["application/json"]?["schema"] else { continue }
                    #expect(schema == ["$ref": "#/components/schemas/Error"] || route.hasSuffix("/readyz"), "\(route) \(status)")
                }
            }
        }
    }

    @Test("real responses of every route, successes and errors, match the document's response schemas",
          .enabled(if: !TestRedis.isCluster, "its 503 responses come from stopping the one Redis"))
    func responsesMatchTheDocument() async throws {
        try await E2EServer.with(environment: Self.environment, persistentRedis: false) { s in
            let served = try await s.http.send("GET", "/openapi.json")
            let contract = Contract(document: served.value)

            // Set up through the API, checking each call on the way.
            func call(_ route: String, _ path: String, token: String?, _ body: Any? = nil, headers: [(String, String)] = []) async throws -> TestHTTPResponse {
                let method = String(route.prefix { $0 != " " })
                let response = try await s.http.json(method, path, token: token, headers: headers, body: body)
                contract.check(route, response, requestBody: body)
                return response
            }
            let admin = E2ETokens.admin, service = E2ETokens.service
            let usage: [[String: Any]] = [["meter": "api_call", "quantity": 1]]
            let tokens: [[String: Any]] = [["meter": "tokens.input", "model": "m", "quantity": 500]]

            _ = try await call("POST /v1/accounts", "/v1/accounts", token: admin, ["id": "acme", "credit_limit": "1"])
            _ = try await call("POST /v1/accounts/{id}/credits", "/v1/accounts/acme/credits", token: admin, ["amount": "10", "request_id": "t1", "kind": "topup"])
            _ = try await call("POST /v1/accounts/{id}/credits", "/v1/accounts/acme/credits", token: admin, ["amount": "10", "request_id": "t1"])
            _ = try await call("POST /v1/accounts/{id}/credits", "/v1/accounts/acme/credits", token: admin, ["amount": "-100", "request_id": "adj", "kind": "adjustment"])
            _ = try await call("PUT /v1/prices/{meter}", "/v1/prices/api_call", token: admin, ["price": "0.5"])
            _ = try await call("PUT /v1/prices/{meter}", "/v1/prices/tokens.input", token: admin, ["price": "0.15", "per": 1_000_000, "model": "m"])
            _ = try await call("GET /v1/prices", "/v1/prices", token: admin)
            let key = try await call("POST /v1/accounts/{id}/keys", "/v1/accounts/acme/keys", token: admin)
            let keyID = try #require(key.value["key_id"]?.string), secret = try #require(key.value["secret"]?.string)
            _ = try await call("PUT /v1/keys/{key_id}/limits", "/v1/keys/\(keyID)/limits", token: admin, ["rpm": 100, "daily_cap": "5", "burst": 0])
            _ = try await call("PUT /v1/accounts/{id}/limits", "/v1/accounts/acme/limits",
                               token: admin, ["rps": 50, "rph": 1000, "tpm": 100_000, "concurrency": 5, "hourly_cap": "9", "monthly_cap": "0"])
            _ = try await call("GET /v1/accounts/{id}/keys", "/v1/accounts/acme/keys", token: admin)
            let accountToken = try #require(try await call("POST /v1/accounts/{id}/tokens", "/v1/accounts/acme/tokens", token: admin).value["token"]?.string)
            // A second token to list, revoke by id (and again: 404), and revoke all of another account.
            let spare = try #require(try await call("POST /v1/accounts/{id}/tokens", "/v1/accounts/acme/tokens", token: admin).value["token_id"]?.string)
            _ = try await call("GET /v1/accounts/{id}/tokens", "/v1/accounts/acme/tokens", token: admin)
            _ = try await call("DELETE /v1/accounts/{id}/tokens/{token_id}", "/v1/accounts/acme/tokens/\(spare)", token: admin)
            _ = try await call("DELETE /v1/accounts/{id}/tokens/{token_id}", "/v1/accounts/acme/tokens/\(spare)", token: admin)
            _ = try await call("DELETE /v1/accounts/{id}/tokens/{token_id}", "/v1/accounts/acme/tokens/tok_short", token: admin)
            _ = try await call("POST /v1/accounts", "/v1/accounts", token: admin, ["id": "tokenless"])
            _ = try await call("DELETE /v1/accounts/{id}/tokens", "/v1/accounts/tokenless/tokens", token: admin)

            // Gateway calls: allowed, denied, held, reported, settled, released.
            _ = try await call("POST /v1/authorize", "/v1/authorize", token: service, ["key": secret, "request_id": "a1", "usage": usage])
            _ = try await call("POST /v1/authorize", "/v1/authorize", token: service, ["key": secret, "request_id": "a1", "usage": usage])
            _ = try await call("POST /v1/authorize", "/v1/authorize", token: service, ["key": "tgk_unknown", "request_id": "a2", "usage": usage])
            _ = try await call("POST /v1/authorize", "/v1/authorize", token: service, ["account": "acme", "request_id": "a3", "usage": [["meter": "api_call", "quantity": 1000]]])
            _ = try await call("POST /v1/authorize", "/v1/authorize", token: service, ["account": "acme", "request_id": "a4", "usage": [["meter": "nope", "quantity": 1]]])
            let hold = try await call("POST /v1/authorize", "/v1/authorize", token: service,
                                      ["account": "acme", "request_id": "h1", "usage": tokens, "mode": "hold", "ttl_ms": 60_000])
            let holdID = try #require(hold.value["hold_id"]?.string)
            _ = try await call("POST /v1/holds/{hold_id}/report", "/v1/holds/\(holdID)/report", token: service, ["request_id": "r1", "usage": tokens])
            _ = try await call("POST /v1/holds/{hold_id}/report", "/v1/holds/\(holdID)/report", token: service,
                               ["request_id": "r2", "usage": [["meter": "tokens.input", "model": "m", "quantity": 10_000_000_000]]])
            _ = try await call("POST /v1/holds/{hold_id}/settle", "/v1/holds/\(holdID)/settle", token: service, ["request_id": "s1", "usage": tokens])
            _ = try await call("POST /v1/holds/{hold_id}/release", "/v1/holds/\(holdID)/release", token: service, ["request_id": "x1"])
            let second = try await call("POST /v1/authorize", "/v1/authorize", token: service, ["account": "acme", "request_id": "h2", "usage": usage, "mode": "hold"])
            _ = try await call("POST /v1/holds/{hold_id}/release", "/v1/holds/\(try #require(second.value["hold_id"]?.string))/release", token: service)
            let third = try await call("POST /v1/authorize", "/v1/authorize", token: service, ["account": "acme", "request_id": "h3", "usage": usage, "mode": "hold"])
            _ = try await call("POST /v1/holds/{hold_id}/settle", "/v1/holds/\(try #require(third.value["hold_id"]?.string))/settle", token: service, ["request_id": "s3"])
            // Limits in decisions: counts and caps.
            _ = try await call("POST /v1/authorize", "/v1/authorize", token: service, ["key": secret, "request_id": "a5", "usage": tokens])

            // The check, allowed and denied.
            for (headers, route) in [
                ([("X-Api-Key", secret), ("X-Request-Id", "c1")], "GET /v1/check"),
                ([("X-Api-Key", secret), ("X-Request-Id", "c2")], "GET /v1/check"),
                ([("X-Api-Key", "tgk_unknown"), ("X-Request-Id", "c3")], "GET /v1/check"),
                ([("X-Request-Id", "c4")], "GET /v1/check"),
                ([("X-Api-Key", secret), ("X-Tollgate-Usage", "bad")], "GET /v1/check"),
            ] {
                let response = try await s.http.send("GET", "/v1/check", headers: headers + [("Tollgate-Service-Token", service)])
                contract.check(route, response)
            }
            contract.check("GET /v1/check", try await s.http.send("GET", "/v1/check", headers: [("X-Api-Key", secret)]))

            // Reads, as the admin and as the account.
            _ = try await call("GET /v1/accounts/{id}", "/v1/accounts/acme", token: admin)
            _ = try await call("GET /v1/accounts/{id}", "/v1/accounts/acme", token: accountToken)
            _ = try await call("GET /v1/accounts/{id}/ledger", "/v1/accounts/acme/ledger?limit=3", token: admin)
            _ = try await call("GET /v1/accounts/{id}/ledger", "/v1/accounts/acme/ledger", token: accountToken)

            // Billing: coupons and redemptions, grants, payment history, usage, reports.
            let expiresSoon = String(Int64(Date().timeIntervalSince1970 * 1000) + 1500)  // ms since the epoch
            let expiring = try await call("POST /v1/coupons", "/v1/coupons", token: admin, ["amount": "1", "expires": expiresSoon])
            let expiringCode = try #require(expiring.value["codes"]?[0]?.string)
            let batch = try await call("POST /v1/coupons", "/v1/coupons", token: admin,
                                       ["amount": "2", "count": 2, "max_redemptions": 1, "expires": "2099-01-01", "credit_expires": "2099-01-01T00:00:00Z"])
            let codes = batch.value["codes"]?.array?.compactMap(\.string) ?? []
            try #require(codes.count == 2, "\(batch)")
            let bound = try await call("POST /v1/coupons", "/v1/coupons", token: admin, ["amount": "0.5", "expires": "2099-01-01", "account": "acme"])
            let boundCode = try #require(bound.value["codes"]?[0]?.string)
            _ = try await call("POST /v1/coupons", "/v1/coupons", token: admin, ["amount": "0", "expires": "2099-01-01"])
            _ = try await call("POST /v1/coupons", "/v1/coupons", token: admin, ["amount": "1", "expires": "2001-01-01"])
            _ = try await call("POST /v1/coupons", "/v1/coupons", token: admin, ["amount": "1"])
            _ = try await call("POST /v1/coupons", "/v1/coupons", token: accountToken, ["amount": "1", "expires": "2099-01-01"])
            _ = try await call("POST /v1/coupons", "/v1/coupons", token: nil, ["amount": "1", "expires": "2099-01-01"])
            _ = try await call("POST /v1/accounts", "/v1/accounts", token: admin, ["id": "beta"])
            let redeem = "POST /v1/accounts/{id}/redeem"
            _ = try await call(redeem, "/v1/accounts/acme/redeem", token: accountToken, ["code": codes[0]])
            _ = try await call(redeem, "/v1/accounts/acme/redeem", token: admin, ["code": boundCode])
            _ = try await call(redeem, "/v1/accounts/beta/redeem", token: admin, ["code": codes[1]])
            #expect(try await call(redeem, "/v1/accounts/acme/redeem", token: accountToken, ["code": codes[0]]).errorCode == "already_redeemed")
            #expect(try await call(redeem, "/v1/accounts/acme/redeem", token: accountToken, ["code": codes[1]]).errorCode == "exhausted")
            #expect(try await call(redeem, "/v1/accounts/beta/redeem", token: admin, ["code": boundCode]).errorCode == "invalid")  // bound to acme
            _ = try await call(redeem, "/v1/accounts/acme/redeem", token: accountToken, ["code": 5])
            _ = try await call(redeem, "/v1/accounts/beta/redeem", token: accountToken, ["code": codes[0]])
            _ = try await call(redeem, "/v1/accounts/acme/redeem", token: nil, ["code": codes[0]])
            _ = try await call(redeem, "/v1/accounts/nobody/redeem", token: admin, ["code": codes[0]])
            let waitMilliseconds = (Int64(expiresSoon) ?? 0) - Int64(Date().timeIntervalSince1970 * 1000) + 50
            if waitMilliseconds > 0 { try await Task.sleep(for: .milliseconds(waitMilliseconds)) }
            #expect(try await call(redeem, "/v1/accounts/acme/redeem", token: accountToken, ["code": expiringCode]).errorCode == "expired")
            // Guessing: failed attempts until every attempt is refused for a while (429).
            var refusedForGuessing = false
            for n in 0..<12 where !refusedForGuessing {
                refusedForGuessing = try await call(redeem, "/v1/accounts/acme/redeem", token: accountToken, ["code": "GUESS-\(n)"]).status == 429
            }
            #expect(refusedForGuessing)

            let grants = "POST /v1/accounts/{id}/grants"
            _ = try await call(grants, "/v1/accounts/acme/grants", token: admin, ["amount": "3", "expires": "2099-01-01", "request_id": "g1"])
            _ = try await call(grants, "/v1/accounts/acme/grants", token: admin, ["amount": "3", "expires": "2099-01-01", "request_id": "g1"])
            _ = try await call(grants, "/v1/accounts/acme/grants", token: admin, ["amount": "1", "request_id": "g2"])
            _ = try await call(grants, "/v1/accounts/acme/grants", token: admin, ["amount": "1", "request_id": "t1"])
            _ = try await call(grants, "/v1/accounts/acme/grants", token: admin, ["amount": "1", "expires": "soon", "request_id": "g3"])
            _ = try await call(grants, "/v1/accounts/acme/grants", token: accountToken, ["amount": "1", "request_id": "g4"])
            _ = try await call(grants, "/v1/accounts/nobody/grants", token: admin, ["amount": "1", "request_id": "g5"])
            // Spend some promotional credit.
            _ = try await call("POST /v1/authorize", "/v1/authorize", token: service, ["account": "acme", "request_id": "p1", "usage": usage])

            // Deposits and provider webhooks.
            let deposits = "POST /v1/accounts/{id}/deposits"
            let deposit = try await call(deposits, "/v1/accounts/acme/deposits", token: accountToken, ["amount": "50", "token": "USDT", "provider": "moonpay"])
            let depositID = try #require(deposit.value["id"]?.string, "\(deposit)")
            let secondDeposit = try await call(deposits, "/v1/accounts/acme/deposits", token: admin, ["amount": "20.5", "token": "usdt", "provider": "moonpay"])
            let secondID = try #require(secondDeposit.value["id"]?.string, "\(secondDeposit)")
            let elsewhere = try await call(deposits, "/v1/accounts/acme/deposits", token: admin, ["amount": "1", "token": "USDT", "provider": "alchemypay"])
            let elsewhereID = try #require(elsewhere.value["id"]?.string, "\(elsewhere)")
            #expect(try await call(deposits, "/v1/accounts/acme/deposits", token: accountToken, ["amount": "5", "token": "DOGE", "provider": "moonpay"]).errorCode == "unsupported_token")
            #expect(try await call(deposits, "/v1/accounts/acme/deposits", token: accountToken, ["amount": "5", "token": "USDC", "provider": "moonpay"]).errorCode == "no_deposit_address")
            _ = try await call(deposits, "/v1/accounts/acme/deposits", token: accountToken, ["amount": "5", "token": "USDT", "provider": "paypal"])
            _ = try await call(deposits, "/v1/accounts/acme/deposits", token: accountToken, ["amount": "-5", "token": "USDT", "provider": "moonpay"])
            _ = try await call(deposits, "/v1/accounts/acme/deposits", token: service, ["amount": "5", "token": "USDT", "provider": "moonpay"])
            _ = try await call(deposits, "/v1/accounts/nobody/deposits", token: admin, ["amount": "5", "token": "USDT", "provider": "moonpay"])
            let webhook = "POST /v1/webhooks/{provider}"
            func deliver(_ path: String, _ body: [UInt8], signed: Bool = true) async throws -> TestHTTPResponse {
                let headers = signed ? Self.moonPayHeaders(body) : [("Content-Type", "application/json")]
                let response = try await s.http.send("POST", path, headers: headers, body: body)
                contract.check(webhook, response)
                return response
            }
            let event = Self.moonPayEvent(depositID)
            #expect(try await deliver("/v1/webhooks/moonpay", event, signed: false).status == 401)
            #expect(try await deliver("/v1/webhooks/moonpay", event).value["status"] == "credited")
            #expect(try await deliver("/v1/webhooks/moonpay", event).value["status"] == "duplicate")
            #expect(try await deliver("/v1/webhooks/moonpay", Self.moonPayEvent(depositID, transaction: "tx2")).value["status"] == "duplicate_payment")
            #expect(try await deliver("/v1/webhooks/moonpay", Self.moonPayEvent(secondID, status: "pending", transaction: "tx3")).value["status"] == "ignored")
            #expect(try await deliver("/v1/webhooks/moonpay", Self.moonPayEvent(secondID, status: "failed", transaction: "tx4")).value["status"] == "failed")
            let mismatch = try await deliver("/v1/webhooks/moonpay", Self.moonPayEvent(secondID, amount: "20", transaction: "tx5"))
            #expect(mismatch.value["status"] == "amount_mismatch", "\(mismatch)")
            #expect(try await deliver("/v1/webhooks/moonpay", Self.moonPayEvent(elsewhereID, transaction: "tx6")).status == 400)
            #expect(try await deliver("/v1/webhooks/moonpay", Array("not json".utf8)).status == 400)
            var tampered = event
            tampered[tampered.firstIndex(of: UInt8(ascii: "5"))!] = UInt8(ascii: "9")
            let tamperedResponse = try await s.http.send("POST", "/v1/webhooks/moonpay", headers: Self.moonPayHeaders(event), body: tampered)
            contract.check(webhook, tamperedResponse)
            #expect(tamperedResponse.status == 401)
            #expect(try await deliver("/v1/webhooks/paypal", event).status == 404)
            #expect(try await deliver("/v1/webhooks/alchemypay", event, signed: false).status == 404)
            _ = try await call("GET /v1/accounts/{id}/deposits", "/v1/accounts/acme/deposits", token: accountToken)
            _ = try await call("GET /v1/accounts/{id}/deposits", "/v1/accounts/acme/deposits", token: admin)
            _ = try await call("GET /v1/accounts/{id}/deposits", "/v1/accounts/acme/deposits", token: service)
            _ = try await call("GET /v1/accounts/{id}/deposits", "/v1/accounts/nobody/deposits", token: admin)

            // History, usage and reports.
            let payments = "GET /v1/accounts/{id}/payments"
            let page = try await call(payments, "/v1/accounts/acme/payments?limit=2", token: accountToken)
            let cursor = try #require(page.value["next_cursor"]?.string, "\(page)")
            _ = try await call(payments, "/v1/accounts/acme/payments?cursor=\(cursor)", token: accountToken)
            _ = try await call(payments, "/v1/accounts/acme/payments?kind=deposit,coupon,grant&from=2020-01-01&to=2099-01-01T00:00:00Z", token: admin)
            _ = try await call(payments, "/v1/accounts/acme/payments?kind=debit", token: admin)
            _ = try await call(payments, "/v1/accounts/acme/payments?from=yesterday", token: admin)
            _ = try await call(payments, "/v1/accounts/acme/payments", token: service)
            _ = try await call(payments, "/v1/accounts/nobody/payments", token: admin)
            for route in ["GET /v1/accounts/{id}/usage", "GET /v1/accounts/{id}/reports/usage.json", "GET /v1/accounts/{id}/reports/usage.csv"] {
                let path = route.dropFirst(4).replacingOccurrences(of: "{id}", with: "acme")
                _ = try await call(route, path, token: accountToken)
                _ = try await call(route, path + "?by=meter,model,key,day&from=2020-01-01", token: admin)
                _ = try await call(route, path + "?by=hour", token: admin)
                _ = try await call(route, path + "?by=week", token: admin)
                _ = try await call(route, path, token: nil)
                _ = try await call(route, route.dropFirst(4).replacingOccurrences(of: "{id}", with: "nobody"), token: admin)
            }
            for route in ["GET /v1/accounts/{id}/reports/transactions.json", "GET /v1/accounts/{id}/reports/transactions.csv"] {
                let path = route.dropFirst(4).replacingOccurrences(of: "{id}", with: "acme")
                let report = try await call(route, path, token: accountToken)
                #expect(report.header("Content-Disposition")?.hasPrefix("attachment;") == true, "\(report)")
                _ = try await call(route, path + "?from=2020-01-01&to=2099-01-01", token: admin)
                _ = try await call(route, path + "?from=2026-01-02&to=2026-01-01", token: admin)
                _ = try await call(route, path, token: service)
                _ = try await call(route, route.dropFirst(4).replacingOccurrences(of: "{id}", with: "nobody"), token: admin)
            }
            _ = try await call("POST /v1/accounts/{id}/freeze", "/v1/accounts/acme/freeze", token: admin)
            _ = try await call("POST /v1/authorize", "/v1/authorize", token: service, ["account": "acme", "request_id": "f1", "usage": usage])
            _ = try await call("POST /v1/accounts/{id}/unfreeze", "/v1/accounts/acme/unfreeze", token: admin)
            _ = try await call("DELETE /v1/keys/{key_id}", "/v1/keys/\(keyID)", token: admin)
            _ = try await call("POST /v1/authorize", "/v1/authorize", token: service, ["key": secret, "request_id": "k1", "usage": usage])
            _ = try await call("GET /v1/audit", "/v1/audit", token: admin)
            let client = s.redis.client()
            _ = try await client.send("HINCRBY", "tg:{a:acme}:acct", "balance", "1")
            client.close()
            _ = try await call("GET /v1/audit", "/v1/audit", token: admin)
            for route in ["GET /healthz", "GET /readyz", "GET /metrics", "GET /openapi.json"] {
                _ = try await call(route, String(route.dropFirst(4)), token: nil)
            }

            // Live streams (their successes are streams, read in EventStreamTests), alerts, the dashboard.
            _ = try await call("PUT /v1/accounts/{id}/alerts", "/v1/accounts/acme/alerts", token: admin, ["low_balance": "1.5"])
            _ = try await call("PUT /v1/accounts/{id}/alerts", "/v1/accounts/acme/alerts", token: admin, ["low_balance": NSNull()])
            _ = try await call("PUT /v1/accounts/{id}/alerts", "/v1/accounts/acme/alerts", token: admin, ["low_balance": "-1"])
            _ = try await call("PUT /v1/accounts/{id}/alerts", "/v1/accounts/nobody/alerts", token: admin, ["low_balance": "1"])
            _ = try await call("GET /v1/accounts/{id}/events", "/v1/accounts/acme/events", token: nil)
            _ = try await call("GET /v1/accounts/{id}/events", "/v1/accounts/acme/events", token: service)
            _ = try await call("GET /v1/accounts/{id}/events", "/v1/accounts/nobody/events", token: admin)
            _ = try await call("GET /v1/accounts/{id}/ws", "/v1/accounts/acme/ws", token: admin)
            _ = try await call("GET /v1/accounts/{id}/ws", "/v1/accounts/acme/ws", token: nil)
            _ = try await call("GET /v1/events", "/v1/events", token: service)
            _ = try await call("GET /v1/events", "/v1/events?kind=nonsense", token: admin)
            _ = try await call("GET /v1/whoami", "/v1/whoami", token: admin)
            _ = try await call("GET /v1/whoami", "/v1/whoami", token: accountToken)
            _ = try await call("GET /v1/whoami", "/v1/whoami", token: "nope")
            _ = try await call("GET /v1/accounts", "/v1/accounts?prefix=ac&limit=10", token: admin)
            _ = try await call("GET /v1/accounts", "/v1/accounts?limit=0", token: admin)
            _ = try await call("GET /v1/accounts", "/v1/accounts", token: accountToken)
            contract.check("GET /", try await s.http.send("GET", "/"))
            for file in ["app.js", "app.css", "no-such-file.js"] {
                contract.check("GET /dashboard/{file}", try await s.http.send("GET", "/dashboard/\(file)"))
            }

            // Errors: 400, 401, 403, 404, 409, 413.
            _ = try await call("POST /v1/accounts", "/v1/accounts", token: admin, ["id": "x", "unknown": 1])
            _ = try await call("POST /v1/accounts", "/v1/accounts", token: nil, ["id": "x"])
            _ = try await call("POST /v1/accounts", "/v1/accounts", token: service, ["id": "x"])
            _ = try await call("POST /v1/accounts", "/v1/accounts", token: admin, ["id": "acme"])
            _ = try await call("POST /v1/accounts/{id}/credits", "/v1/accounts/acme/credits", token: admin, ["amount": "1.0000001", "request_id": "b"])
            _ = try await call("POST /v1/accounts/{id}/credits", "/v1/accounts/acme/credits", token: admin, ["amount": "2", "request_id": "t1"])
            _ = try await call("POST /v1/accounts/{id}/credits", "/v1/accounts/nobody/credits", token: admin, ["amount": "2", "request_id": "t1"])
            _ = try await call("GET /v1/accounts/{id}", "/v1/accounts/nobody", token: admin)
            _ = try await call("GET /v1/accounts/{id}", "/v1/accounts/a%00", token: admin)
            _ = try await call("GET /v1/accounts/{id}", "/v1/accounts/acme", token: nil)
            _ = try await call("GET /v1/accounts/{id}/ledger", "/v1/accounts/acme/ledger?limit=0", token: admin)
            _ = try await call("GET /v1/accounts/{id}/ledger", "/v1/accounts/acme/ledger", token: service)
            _ = try await call("DELETE /v1/keys/{key_id}", "/v1/keys/key_0000000000000000", token: admin)
            _ = try await call("PUT /v1/keys/{key_id}/limits", "/v1/keys/bad/limits", token: admin, ["rpm": 1])
            _ = try await call("PUT /v1/prices/{meter}", "/v1/prices/api_call", token: admin, ["price": "1", "per": 0])
            _ = try await call("POST /v1/authorize", "/v1/authorize", token: admin, ["account": "acme", "request_id": "z", "usage": usage])
            _ = try await call("POST /v1/authorize", "/v1/authorize", token: service, ["account": "nobody", "request_id": "z", "usage": usage])
            _ = try await call("POST /v1/holds/{hold_id}/settle", "/v1/holds/bad/settle", token: service, ["request_id": "z"])
            _ = try await call("POST /v1/holds/{hold_id}/settle", "/v1/holds/h1.bm9ib2R5/settle", token: service, ["request_id": "z"])  // "nobody"
            let big = Array(#"{"id": "big"}"#.utf8) + Array(repeating: UInt8(ascii: " "), count: 70_000)
            contract.check("POST /v1/accounts", try await s.http.send("POST", "/v1/accounts", headers: [("Authorization", "Bearer \(admin)")], body: big))
            _ = try await call("GET /v1/audit", "/v1/audit", token: "nope")
            _ = try await call("GET /v1/audit", "/v1/audit", token: service)
            _ = try await call("GET /v1/prices", "/v1/prices", token: accountToken)
            _ = try await call("POST /v1/holds/{hold_id}/report", "/v1/holds/\(holdID)/report", token: nil, ["request_id": "z", "usage": usage])
            _ = try await call("PUT /v1/accounts/{id}/limits", "/v1/accounts/acme/limits", token: admin, ["rpm": "fast"])
            _ = try await call("POST /v1/accounts/{id}/keys", "/v1/accounts/nobody/keys", token: admin)

            // 503: Redis gone.
            s.redis.stop()
            _ = try await call("GET /readyz", "/readyz", token: nil)
            _ = try await call("POST /v1/authorize", "/v1/authorize", token: service, ["account": "acme", "request_id": "d1", "usage": usage])
            _ = try await call("GET /v1/accounts/{id}", "/v1/accounts/acme", token: admin)
            _ = try await call("GET /v1/accounts/{id}/payments", "/v1/accounts/acme/payments", token: admin)
            _ = try await call("POST /v1/coupons", "/v1/coupons", token: admin, ["amount": "1", "expires": "2099-01-01"])
            let late = Self.moonPayEvent("dep_abc.YWNtZQ", transaction: "tx9")
            contract.check("POST /v1/webhooks/{provider}", try await s.http.send("POST", "/v1/webhooks/moonpay", headers: Self.moonPayHeaders(late), body: late))
            contract.check("GET /v1/check", try await s.http.send("GET", "/v1/check", headers: [("X-Api-Key", secret), ("Tollgate-Service-Token", service)]))

            #expect(contract.problems == [], "\(contract.problems.joined(separator: "\n"))")
            // Each route was seen, most with an error too.
            #expect(Set(contract.seen.map(\.route)) == Set(Self.routes.keys))
            let statuses = Set(contract.seen.map(\.status))
            #expect(statuses.isSuperset(of: [200, 201, 400, 401, 403, 404, 409, 413, 422, 429, 503]), "\(statuses.sorted())")
        }
    }

    @Test("the document's request schemas refuse what the server refuses; the validator catches extra, missing and mistyped fields")
    func requestSchemas() async throws {
        let document = try JSONValue(parsing: try Self.repositoryDocument())
        let validator = JSONSchemaValidator(document: document)
        func schema(_ name: String) throws -> JSONValue { try #require(validator.resolve("#/components/schemas/\(name)")) }
        let good: [(String, JSONValue)] = [
            ("AuthorizeRequest", ["key": "k", "request_id": "r", "usage": [["meter": "tokens.input", "model": "m", "quantity": 5]], "mode": "hold", "ttl_ms": 1000]),
            ("CreditRequest", ["amount": "-0.5", "request_id": "r", "kind": "adjustment"]),
            ("LimitsRequest", ["rpm": 0, "daily_cap": "0"]),
            ("HoldReleaseRequest", [:]),
            ("CreateCouponsRequest", ["amount": "5", "count": 3, "max_redemptions": 10, "expires": "2099-01-01", "account": "a", "credit_expires": "2099-02-01"]),
            ("RedeemRequest", ["code": "ABCD-EFGH"]),
            ("GrantRequest", ["amount": "2.5", "expires": "2099-01-01T00:00:00Z", "request_id": "r"]),
            ("DepositRequest", ["amount": "50.25", "token": "USDT", "provider": "alchemypay"]),
        ]
        for (name, body) in good { #expect(validator.errors(body, try schema(name)) == [], "\(name)") }
        let bad: [(String, JSONValue)] = [
            ("AuthorizeRequest", ["key": "k", "request_id": "r", "usage": [["meter": "m", "quantity": 1, "extra": 1]]]),
            ("AuthorizeRequest", ["request_id": "r", "usage": [], "colour": "red"]),
            ("AuthorizeRequest", ["request_id": "r"]),
            ("CreditRequest", ["amount": "1e3", "request_id": "r"]),
            ("CreditRequest", ["amount": 10, "request_id": "r"]),
            ("CreditRequest", ["amount": "1", "request_id": "r", "kind": "deposit"]),
            ("PriceRequest", ["price": "1.0000001"]),
            ("LimitsRequest", ["rpd": 1]),
            ("HoldReleaseRequest", ["usage": []]),
            ("CreateAccountRequest", ["id": "x", "credit_limit": "-1"]),
            ("CreateCouponsRequest", ["amount": "5"]),
            ("CreateCouponsRequest", ["amount": "5", "expires": "2099-01-01", "count": 0]),
            ("CreateCouponsRequest", ["amount": "5", "expires": "2099-01-01", "codes": ["A"]]),
            ("RedeemRequest", ["code": 5]),
            ("GrantRequest", ["amount": "-1", "request_id": "r"]),
            ("GrantRequest", ["amount": "1", "request_id": "r", "kind": "grant"]),
            ("DepositRequest", ["amount": "50", "token": "USDT", "provider": "paypal"]),
            ("DepositRequest", ["amount": "-5", "token": "USDT", "provider": "moonpay"]),
            ("DepositRequest", ["amount": "5", "token": "USDT"]),
        ]
        for (name, body) in bad { #expect(!validator.errors(body, try schema(name)).isEmpty, "\(name) \(body)") }

        // The validator itself, on response shapes.
        let account: JSONValue = ["id": "a", "status": "active", "balance": "1.5", "paid": "1.5", "promotional": "0", "held": "0", "available": "1.5", "credit_limit": "0"]
        #expect(validator.errors(account, try schema("Account")) == [])
        let wrongAccounts: [JSONValue] = [
            account.with(["extra": 1]), account.without("held"), account.with(["balance": .double(1.5)]),
            account.with(["balance": "1.50"]), account.with(["balance": "0.0000001"]), account.with(["status": "gone"]),
            account.with(["id": .null]), .array([account]),
        ]
        for wrong in wrongAccounts { #expect(!validator.errors(wrong, try schema("Account")).isEmpty, "\(wrong)") }
        let unknownKey: JSONValue = ["allowed": false, "reason": "unknown_key", "retry_after_ms": nil, "cost": "0", "amount": "0",
                                     "account": nil, "balance": nil, "promotional": nil, "held": nil, "available": nil, "status": nil, "hold_id": nil,
                                     "replayed": false, "limits": []]
        #expect(validator.errors(unknownKey, try schema("Decision")) == [])
        #expect(!validator.errors(unknownKey.with(["reason": "because"]), try schema("Decision")).isEmpty)
        #expect(!validator.errors(unknownKey.with(["limits": [["name": "account.rpm", "limit": 1, "remaining": 0]]]), try schema("Decision")).isEmpty)
        #expect(!validator.errors(unknownKey.with(["cost": nil]), try schema("Decision")).isEmpty)
        #expect(validator.errors(["rpm": 5, "daily_cap": "2.5"], try schema("Limits")) == [])
        #expect(!validator.errors(["rpm": "5"], try schema("Limits")).isEmpty)
        #expect(!validator.errors(["not_a_schema_keyword": true] as JSONValue, ["oneOf": []]).isEmpty)
    }
}

/// Checks responses against the document: the status is documented for the operation, and
/// the body (JSON, text or none) matches what is documented for that status.
final class Contract: @unchecked Sendable {
    let validator: JSONSchemaValidator
    private(set) var problems: [String] = []
    private(set) var seen: [(route: String, status: Int)] = []

    init(document: JSONValue) {
        validator = JSONSchemaValidator(document: document)
    }

    func operation(_ route: String) -> JSONValue? {
        let method = route.prefix { $0 != " " }.lowercased()
        let path = String(route.drop { $0 != " " }.dropFirst())
        return validator.document["paths"]?[path]?[method]
    }

    func check(_ route: String, _ response: TestHTTPResponse, requestBody: Any? = nil) {
        seen.append((route, response.status))
        guard let operation = operation(route) else {
            problems.append("\(route): not in the document")
            return
        }
        // What the test sent for a success must itself be valid.
        if let requestBody, (200..<300).contains(response.status),
           let schema = operation["requestBody"]?["content"]?["application/json"]?["schema"],
           let data = try? JSONSerialization.data(withJSONObject: requestBody), let body = try? JSONValue(parsing: Array(data)) {
            problems += validator.errors(body, schema, at: "\(route) request").map { $0 }
        }
        guard let documented = operation["responses"]?[String(response.status)], let described = validator.dereference(documented) else {
            problems.append("\(route): status \(response.status) is not documented: \(response)")
            return
        }
        let content = described["content"]?.object ?? [:]
        let contentType = response.header("Content-Type") ?? ""
        if let json = content["application/json"]?["schema"] {
            guard contentType == "application/json" else {
                problems.append("\(route) \(response.status): Content-Type \(contentType), documented application/json")
                return
            }
            guard let value = try? JSONValue(parsing: response.body) else {
                problems.append("\(route) \(response.status): the body is not JSON: \(response.text.prefix(200))")
                return
            }
            problems += validator.errors(value, json, at: "\(route) \(response.status)")
        } else if !content.isEmpty {
            // Other bodies: the media type (parameters such as charset aside) is one documented.
            let mediaType = String(contentType.prefix { $0 != ";" }).trimmingCharacters(in: .whitespaces)
            if content[mediaType] == nil {
                problems.append("\(route) \(response.status): Content-Type \(contentType), documented \(content.keys.sorted())")
            }
        } else if !response.body.isEmpty {
            problems.append("\(route) \(response.status): a body where the document has none: \(response.text.prefix(200))")
        }
        // Tollgate's own response headers are documented for the status.
        let headers = Set((described["headers"]?.object ?? [:]).keys.map { $0.lowercased() })
        for field in response.headers {
            let name = field.name.lowercased()
            if name.hasPrefix("x-tollgate-") || name.hasPrefix("ratelimit-") || name == "retry-after" || name == "location" || name == "www-authenticate",
               !headers.contains(name) {
                problems.append("\(route) \(response.status): header \(field.name) is not documented")
            }
        }
    }
}
