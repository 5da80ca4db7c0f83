import Foundation
import Testing
import TollgateTestSupport

/// The admin API: the HTTP twin of every CLI verb.
@Suite("admin API: accounts, credits, keys, prices, limits, ledger, audit, account tokens")
struct AdminTests {
    @Test("accounts: create (201, Location), show, freeze, unfreeze; credits of each kind, replays")
    func accountsAndCredits() async throws {
        try await E2EServer.with { s in
            let created = try await s.admin("POST", "/v1/accounts", ["id": "acme", "credit_limit": "2.5"])
            #expect(created.status == 201)
            #expect(created.header("Location") == "/v1/accounts/acme")
            #expect(created.header("Content-Type") == "application/json")
            let fresh: JSONValue = ["id": "acme", "status": "active", "balance": "0", "paid": "0", "promotional": "0", "held": "0", "available": "0", "credit_limit": "2.5"]
            #expect(created.value == fresh)
            #expect(try await s.show("acme") == fresh)

            let frozen = try await s.admin("POST", "/v1/accounts/acme/freeze")
            #expect(frozen.status == 200 && frozen.value == fresh.with(["status": "frozen"]))
            #expect(try await s.show("acme")["status"] == "frozen")
            let thawed = try await s.admin("POST", "/v1/accounts/acme/unfreeze")
            #expect(thawed.status == 200 && thawed.value == fresh)

            // A top-up (the default kind): the decision, with the ledger entry it wrote.
            let topup = try await s.admin("POST", "/v1/accounts/acme/credits", ["amount": "10", "request_id": "t1"])
            #expect(topup.status == 200)
            let entry = try #require(topup.value["entry_id"]?.string)
            #expect(topup.value == [
                "allowed": true, "reason": nil, "retry_after_ms": nil, "promotional": "0", "cost": "10", "amount": "10",
                "account": "acme", "balance": "10", "held": "0", "available": "10", "status": "active",
                "entry_id": .string(entry), "hold_id": nil, "replayed": false, "limits": [],
            ])
            // The same request id: replayed, not credited twice.
            let again = try await s.admin("POST", "/v1/accounts/acme/credits", ["amount": "10", "request_id": "t1"])
            #expect(again.status == 200 && again.value == topup.value.with(["replayed": true]))
            // A grant, and a negative adjustment.
            let grant = try await s.admin("POST", "/v1/accounts/acme/credits", ["amount": "0.000001", "request_id": "g1", "kind": "grant"])
            #expect(grant.status == 200 && grant.value["balance"] == "10.000001")
            let adjustment = try await s.admin("POST", "/v1/accounts/acme/credits", ["amount": "-0.5", "request_id": "a1", "kind": "adjustment"])
            #expect(adjustment.status == 200 && adjustment.value["balance"] == "9.500001" && adjustment.value["amount"] == "-0.5")
            #expect(try await s.show("acme") == fresh.with(["balance": "9.500001", "paid": "9.5", "promotional": "0.000001", "available": "9.500001"]))

            let kinds = try await s.admin("GET", "/v1/accounts/acme/ledger")
            #expect(kinds.value["entries"]?.array?.map { $0["kind"] } == ["adjustment", "grant", "topup"])
        }
    }

    @Test("ledger pages: limit and cursor, entries with every documented field")
    func ledger() async throws {
        try await E2EServer.with { s in
            try await s.price("tokens.input", "0.15", per: 1_000_000, model: "m")
            try await s.account("acme", credit: "5")
            let key = try await s.key(for: "acme")
            _ = try await s.authorize(["key": key.secret, "request_id": "d1", "usage": [["meter": "tokens.input", "model": "m", "quantity": 1000]]])
            _ = try await s.authorize(["key": key.secret, "request_id": "d2", "usage": [["meter": "tokens.input", "model": "m", "quantity": 2000]]])

            let page1 = try await s.admin("GET", "/v1/accounts/acme/ledger?limit=2")
            #expect(page1.status == 200)
            let entries = try #require(page1.value["entries"]?.array)
            #expect(entries.count == 2)
            let newest = try #require(entries.first)
            let id = try #require(newest["id"]?.string)
            let time = try #require(newest["time"]?.string)
            #expect(time.hasSuffix("Z") && time.count == "2026-01-01T00:00:00.000Z".count)
            #expect(newest == [
                "id": .string(id), "kind": "debit", "amount": "-0.0003", "balance": "4.99955", "held": "0", "held_delta": "0",
                "request_id": "d2", "time": .string(time), "meter": "tokens.input", "model": "m", "quantity": 2000, "key": .string(key.id),
            ])
            let cursor = try #require(page1.value["next_cursor"]?.string)
            #expect(cursor == entries.last?["id"]?.string)

            let page2 = try await s.admin("GET", "/v1/accounts/acme/ledger?limit=2&cursor=\(cursor)")
            #expect(page2.status == 200)
            let rest = try #require(page2.value["entries"]?.array)
            #expect(rest.count == 1 && rest.first?["kind"] == "topup" && rest.first?["amount"] == "5" && rest.first?["request_id"] == "setup-credit-acme")
            #expect(page2.value["next_cursor"] == nil)

            // Bad paging is a 400.
            for query in ["limit=0", "limit=10001", "limit=x", "cursor=nope"] {
                let bad = try await s.admin("GET", "/v1/accounts/acme/ledger?\(query)")
                #expect(bad.status == 400, "\(query): \(bad)")
            }
        }
    }

    @Test("keys: create (201, secret once), list, per-key limits, revoke; prices: set and list")
    func keysAndPrices() async throws {
        try await E2EServer.with { s in
            try await s.account("acme")
            let created = try await s.admin("POST", "/v1/accounts/acme/keys")
            #expect(created.status == 201)
            let keyID = try #require(created.value["key_id"]?.string)
            let secret = try #require(created.value["secret"]?.string)
            #expect(created.value == ["key_id": .string(keyID), "account": "acme", "secret": .string(secret)])
            #expect(keyID.hasPrefix("key_") && keyID.count == 20 && secret.hasPrefix("tgk_"))

            let limits = try await s.admin("PUT", "/v1/keys/\(keyID)/limits", ["rpm": 60, "burst": 10, "daily_cap": "2.5"])
            #expect(limits.status == 200 && limits.value == ["rpm": 60, "burst": 10, "daily_cap": "2.5"])
            // 0 removes a limit, others stay.
            let removed = try await s.admin("PUT", "/v1/keys/\(keyID)/limits", ["burst": 0])
            #expect(removed.status == 200 && removed.value == ["rpm": 60, "daily_cap": "2.5"])

            let listed = try await s.admin("GET", "/v1/accounts/acme/keys")
            #expect(listed.status == 200)
            let summary = try #require(listed.value[0])
            let createdAt = try #require(summary["created"]?.string)
            #expect(createdAt.hasSuffix("Z"))
            #expect(listed.value == [["key_id": .string(keyID), "account": "acme", "status": "active", "created": .string(createdAt),
                                      "limits": ["rpm": 60, "daily_cap": "2.5"]]])
            #expect(!listed.text.contains(secret))

            let revoked = try await s.admin("DELETE", "/v1/keys/\(keyID)")
            #expect(revoked.status == 200 && revoked.value == ["key_id": .string(keyID), "status": "revoked"])
            #expect(try await s.admin("GET", "/v1/accounts/acme/keys").value[0]?["status"] == "revoked")
            #expect(try await s.admin("DELETE", "/v1/keys/key_0000000000000000").status == 404)

            // Account limits, every field of `limits set`.
            let all: [String: Any] = ["rps": 5, "rpm": 100, "rph": 1000, "burst": 20, "tpm": 50_000, "concurrency": 3,
                                      "hourly_cap": "1", "daily_cap": "10", "monthly_cap": "100", "lifetime_cap": "1000.5"]
            let accountLimits = try await s.admin("PUT", "/v1/accounts/acme/limits", all)
            #expect(accountLimits.status == 200)
            #expect(accountLimits.value == ["rps": 5, "rpm": 100, "rph": 1000, "burst": 20, "tpm": 50_000, "concurrency": 3,
                                            "hourly_cap": "1", "daily_cap": "10", "monthly_cap": "100", "lifetime_cap": "1000.5"])

            // Prices: per defaults to 1, the model to none.
            let flat = try await s.admin("PUT", "/v1/prices/api_call", ["price": "0.001"])
            #expect(flat.status == 200 && flat.value == ["meter": "api_call", "model": nil, "price": "0.001", "per": 1])
            let tokens = try await s.admin("PUT", "/v1/prices/tokens.input", ["price": "0.15", "per": 1_000_000, "model": "m"])
            #expect(tokens.status == 200 && tokens.value == ["meter": "tokens.input", "model": "m", "price": "0.15", "per": 1_000_000])
            let prices = try await s.admin("GET", "/v1/prices")
            #expect(prices.status == 200)
            #expect(prices.value == [["meter": "api_call", "model": nil, "price": "0.001", "per": 1],
                                     ["meter": "tokens.input", "model": "m", "price": "0.15", "per": 1_000_000]])
        }
    }

    @Test("account tokens read their own account and ledger; audit reports drift")
    func tokensAndAudit() async throws {
        try await E2EServer.with { s in
            try await s.account("acme", credit: "3")
            try await s.account("other", credit: "1")
            let made = try await s.admin("POST", "/v1/accounts/acme/tokens")
            #expect(made.status == 201)
            let token = try #require(made.value["token"]?.string)
            let tokenID = try #require(made.value["token_id"]?.string)
            #expect(made.value == ["account": "acme", "token": .string(token), "token_id": .string(tokenID)])
            #expect(tokenID.hasPrefix("tok_") && tokenID.count == 68)

            let own = try await s.request("GET", "/v1/accounts/acme", token: token)
            #expect(own.status == 200 && own.value["balance"] == "3")
            #expect(try await s.request("GET", "/v1/accounts/acme/ledger", token: token).status == 200)
            #expect(try await s.request("GET", "/v1/accounts/other", token: token).status == 403)
            #expect(try await s.request("GET", "/v1/accounts/other/ledger", token: token).status == 403)

            let clean = try await s.admin("GET", "/v1/audit")
            #expect(clean.status == 200 && clean.value == ["clean": true, "accounts_checked": 2, "drifting": []])
            // Drift made behind the engine's back shows up.
            let client = s.testRedis.client()
            defer { client.close() }
            _ = try await client.send("HINCRBY", "tg:{a:other}:acct", "balance", "1000000")
            let drift = try await s.admin("GET", "/v1/audit")
            #expect(drift.status == 200)
            #expect(drift.value["clean"] == false && drift.value["accounts_checked"] == 2)
            let drifting = try #require(drift.value["drifting"]?.array)
            #expect(drifting.count == 1)
            let report = try #require(drifting.first)
            #expect(report.without("problems") == ["account": "other", "clean": false, "balance": "2", "ledger_sum": "1", "held": "0",
                                                   "open_holds": "0", "entries": 1])
            #expect((report["problems"]?.array?.count ?? 0) >= 1)
        }
    }

    @Test("ids with any bytes: '/', spaces, '%', '?', non-ASCII round-trip through the path; control characters are refused")
    func oddIDs() async throws {
        try await E2EServer.with { s in
            let id = "a/b c?é%#"
            let created = try await s.admin("POST", "/v1/accounts", ["id": id])
            #expect(created.status == 201)
            let location = try #require(created.header("Location"))
            #expect(location == "/v1/accounts/a%2Fb%20c%3F%C3%A9%25%23")
            let shown = try await s.admin("GET", location)
            #expect(shown.status == 200 && shown.value["id"] == .string(id))
            let credited = try await s.admin("POST", "/v1/accounts/\(E2EPath.segment(id))/credits", ["amount": "1", "request_id": "x"])
            #expect(credited.status == 200 && credited.value["account"] == .string(id))
            #expect(try await s.admin("GET", "/v1/accounts/\(E2EPath.segment(id))/ledger").value["entries"]?.array?.count == 1)
            // The longest id is 256 bytes.
            let long = String(repeating: "é", count: 128)
            #expect(try await s.admin("POST", "/v1/accounts", ["id": long]).status == 201)
            #expect(try await s.admin("GET", "/v1/accounts/\(E2EPath.segment(long))").status == 200)
        }
    }
}
