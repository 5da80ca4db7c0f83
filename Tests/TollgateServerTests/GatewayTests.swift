import Foundation
import Testing
import TollgateTestSupport

/// `POST /v1/authorize` and the hold follow-ups against the real `tollgate serve`.
@Suite("gateway API: authorize, holds, every denial reason")
struct GatewayTests {
    @Test("authorize by key and by account: exact decision JSON, replays, holds reported, settled and released")
    func authorizeAndHolds() async throws {
        try await E2EServer.with { s in
            try await s.account("acme", credit: "10")
            try await s.price("api_call", "0.5")
            try await s.price("tokens.input", "0.15", per: 1_000_000, model: "m")
            let key = try await s.key(for: "acme")

            // A debit by key: the decision as JSON, every field.
            let debit = try await s.authorize(["key": key.secret, "request_id": "r1", "usage": [["meter": "api_call", "quantity": 1]]])
            let entry = try #require(debit["entry_id"]?.string)
            #expect(debit == [
                "allowed": true, "reason": nil, "retry_after_ms": nil, "promotional": "0", "cost": "0.5", "amount": "0.5",
                "account": "acme", "balance": "9.5", "held": "0", "available": "9.5", "status": "active",
                "entry_id": .string(entry), "hold_id": nil, "replayed": false, "limits": [],
            ])
            // The same request id again: the first answer, replayed; nothing charged twice.
            let replay = try await s.authorize(["key": key.secret, "request_id": "r1", "usage": [["meter": "api_call", "quantity": 1]]])
            #expect(replay == debit.with(["replayed": true]))
            #expect(try await s.show("acme")["balance"] == "9.5")

            // A hold by account, with an explicit mode and TTL.
            let hold = try await s.authorize([
                "account": "acme", "request_id": "h1", "mode": "hold", "ttl_ms": 30_000,
                "usage": [["meter": "tokens.input", "model": "m", "quantity": 1200]],
            ])
            let holdID = try #require(hold["hold_id"]?.string)
            #expect(holdID.hasPrefix("h") && holdID.hasSuffix(".YWNtZQ"))  // base64url("acme")
            let expires = try #require(hold["hold_expires_at"]?.int)
            #expect(expires > 1_700_000_000_000)
            #expect(hold.without("entry_id", "hold_expires_at") == [
                "allowed": true, "reason": nil, "retry_after_ms": nil, "promotional": "0", "cost": "0.00018", "amount": "0.00018",
                "account": "acme", "balance": "9.5", "held": "0.00018", "available": "9.49982", "status": "active",
                "hold_id": .string(holdID), "replayed": false, "limits": [],
            ])

            // Report a batch against it: charged from what the hold reserves.
            let report = try await s.service("POST", "/v1/holds/\(holdID)/report",
                                             ["request_id": "h1-b1", "usage": [["meter": "tokens.input", "model": "m", "quantity": 1000]]])
            #expect(report.status == 200)
            #expect(report.value.without("entry_id") == [
                "allowed": true, "reason": nil, "retry_after_ms": nil, "promotional": "0", "cost": "0.00015", "amount": "0.00015",
                "account": "acme", "balance": "9.49985", "held": "0.00003", "available": "9.49982", "status": "active",
                "hold_id": .string(holdID), "captured_on_hold": "0.00015", "replayed": false, "limits": [],
            ])
            // Settle on the final usage (2000 tokens): the rest is charged, the hold released.
            let settle = try await s.service("POST", "/v1/holds/\(holdID)/settle",
                                             ["request_id": "h1-s", "usage": [["meter": "tokens.input", "model": "m", "quantity": 2000]]])
            #expect(settle.status == 200)
            #expect(settle.value.without("entry_id") == [
                "allowed": true, "reason": nil, "retry_after_ms": nil, "promotional": "0", "cost": "0.0003", "amount": "0.0003",
                "account": "acme", "balance": "9.4997", "held": "0", "available": "9.4997", "status": "active",
                "hold_id": .string(holdID), "captured_on_hold": "0.0003", "replayed": false, "limits": [],
            ])
            // The hold is gone: a release is a denial (200, allowed false, hold_not_found).
            let late = try await s.service("POST", "/v1/holds/\(holdID)/release", ["request_id": "h1-r"])
            #expect(late.status == 200)
            #expect(late.value["allowed"] == false && late.value["reason"] == "hold_not_found")

            // A second hold released with no body at all (the request id is derived).
            let second = try await s.authorize(["account": "acme", "request_id": "h2", "mode": "hold",
                                                "usage": [["meter": "api_call", "quantity": 2]]])
            let secondID = try #require(second["hold_id"]?.string)
            #expect(second["held"] == "1" && second["available"] == "8.4997")
            let release = try await s.http.send("POST", "/v1/holds/\(secondID)/release", headers: [("Authorization", "Bearer \(E2ETokens.service)")])
            #expect(release.status == 200, "\(release)")
            #expect(release.value.without("entry_id") == [
                "allowed": true, "reason": nil, "retry_after_ms": nil, "promotional": "0", "cost": "1", "amount": "1",
                "account": "acme", "balance": "9.4997", "held": "0", "available": "9.4997", "status": "active",
                "hold_id": .string(secondID), "captured_on_hold": "0", "replayed": false, "limits": [],
            ])
            // A settle with no usage settles on what was reported.
            let third = try await s.authorize(["account": "acme", "request_id": "h3", "mode": "hold",
                                               "usage": [["meter": "api_call", "quantity": 1]]])
            let thirdID = try #require(third["hold_id"]?.string)
            let bare = try await s.service("POST", "/v1/holds/\(thirdID)/settle", ["request_id": "h3-s"])
            #expect(bare.status == 200 && bare.value["allowed"] == true && bare.value["held"] == "0" && bare.value["balance"] == "9.4997")

            // The ledger saw every change, newest first, and the books balance.
            let ledger = try await s.admin("GET", "/v1/accounts/acme/ledger")
            #expect(ledger.status == 200)
            let kinds = ledger.value["entries"]?.array?.compactMap { $0["kind"]?.string }
            #expect(kinds == ["release", "hold", "release", "hold", "release", "capture", "capture", "hold", "debit", "topup"])
            let audit = try await s.admin("GET", "/v1/audit")
            #expect(audit.value == ["clean": true, "accounts_checked": 1, "drifting": []])
        }
    }

    @Test("each denial reason over /v1/authorize is a 200 with allowed false, the reason, and nothing changed")
    func denialReasons() async throws {
        try await E2EServer.with { s in
            try await s.price("api_call", "0.5")
            try await s.price("tokens.input", "0.15", per: 1_000_000, model: "m")
            func call(_ target: [String: Any], _ id: String, meter: String = "api_call", model: String? = nil, quantity: Int = 1,
                      hold: Bool = false) async throws -> JSONValue {
                var item: [String: Any] = ["meter": meter, "quantity": quantity]
                if let model { item["model"] = model }
                var body = target.merging(["request_id": id, "usage": [item]]) { a, _ in a }
                if hold { body["mode"] = "hold" }
                return try await s.authorize(body)
            }
            func expectDenied(_ decision: JSONValue, _ reason: String, balance: String?, retry: Bool? = false,
                              sourceLocation: SourceLocation = #_sourceLocation) {
                #expect(decision["allowed"] == false, "\(decision)", sourceLocation: sourceLocation)
                #expect(decision["reason"] == .string(reason), "\(decision)", sourceLocation: sourceLocation)
                #expect(decision["cost"] == "0" && decision["entry_id"] == nil && decision["hold_id"] == .null,
                        "\(decision)", sourceLocation: sourceLocation)
                #expect(decision["balance"] == (balance.map(JSONValue.string) ?? .null), "\(decision)", sourceLocation: sourceLocation)
                switch retry {
                case true?: #expect((decision["retry_after_ms"]?.int ?? 0) > 0, "\(decision)", sourceLocation: sourceLocation)
                case false?: #expect(decision["retry_after_ms"] == .null, "\(decision)", sourceLocation: sourceLocation)
                case nil: break
                }
            }

            // insufficient_credit: 0.2 credits do not pay 0.5.
            try await s.account("poor", credit: "0.2")
            expectDenied(try await call(["account": "poor"], "p1"), "insufficient_credit", balance: "0.2")

            // rate_limited: 1 request a minute.
            try await s.account("rl", credit: "10")
            try await s.limits("/v1/accounts/rl/limits", ["rpm": 1])
            let first = try await call(["account": "rl"], "rl1")
            #expect(first["allowed"] == true)
            #expect(first["limits"] == [["name": "account.rpm", "limit": 1, "remaining": 0, "reset_ms": 60_000]])
            let limited = try await call(["account": "rl"], "rl2")
            expectDenied(limited, "rate_limited", balance: "9.5", retry: true)
            #expect((limited["retry_after_ms"]?.int ?? 0) <= 60_000)
            #expect(limited["limits"]?[0]?["name"] == "account.rpm" && limited["limits"]?[0]?["remaining"] == 0)

            // token_rate_limited: more tokens in one call than a minute allows (waiting cannot help).
            try await s.account("tk", credit: "10")
            try await s.limits("/v1/accounts/tk/limits", ["tpm": 1000])
            expectDenied(try await call(["account": "tk"], "tk1", meter: "tokens.input", model: "m", quantity: 1001),
                         "token_rate_limited", balance: "10")
            #expect(try await call(["account": "tk"], "tk2", meter: "tokens.input", model: "m", quantity: 1000)["allowed"] == true)

            // concurrency_limited: one open hold at a time.
            try await s.account("cc", credit: "10")
            try await s.limits("/v1/accounts/cc/limits", ["concurrency": 1])
            #expect(try await call(["account": "cc"], "cc1", hold: true)["allowed"] == true)
            expectDenied(try await call(["account": "cc"], "cc2", hold: true), "concurrency_limited", balance: "10")

            // spend_cap_reached: a lifetime cap of 1 credit lets two 0.5 calls through.
            try await s.account("cap", credit: "10")
            try await s.limits("/v1/accounts/cap/limits", ["lifetime_cap": "1"])
            #expect(try await call(["account": "cap"], "cap1")["allowed"] == true)
            #expect(try await call(["account": "cap"], "cap2")["allowed"] == true)
            let capped = try await call(["account": "cap"], "cap3")
            expectDenied(capped, "spend_cap_reached", balance: "9")
            #expect(capped["limits"] == [["name": "account.lifetime_cap", "limit": "1", "remaining": "0", "reset_ms": 0]])

            // account_frozen.
            try await s.account("cold", credit: "10")
            #expect(try await s.admin("POST", "/v1/accounts/cold/freeze").status == 200)
            let frozen = try await call(["account": "cold"], "f1")
            expectDenied(frozen, "account_frozen", balance: "10")
            #expect(frozen["status"] == "frozen")

            // key_revoked, then unknown_key (no account at all).
            try await s.account("keyed", credit: "10")
            let key = try await s.key(for: "keyed")
            #expect(try await s.admin("DELETE", "/v1/keys/\(key.id)").status == 200)
            expectDenied(try await call(["key": key.secret], "k1"), "key_revoked", balance: "10")
            let unknown = try await call(["key": "tgk_this_is_not_a_key"], "k2")
            expectDenied(unknown, "unknown_key", balance: nil)
            #expect(unknown["account"] == .null && unknown["status"] == .null && unknown["available"] == .null)

            // unknown_meter: no price for the meter, or for the meter with this model.
            expectDenied(try await call(["account": "keyed"], "m1", meter: "nope"), "unknown_meter", balance: "10")
            expectDenied(try await call(["account": "keyed"], "m2", meter: "tokens.input", model: "other"), "unknown_meter", balance: "10")

            // Denials changed nothing: balances as set up, and the books balance.
            for (id, balance) in [("poor", "0.2"), ("tk", "9.99985"), ("cc", "10"), ("cold", "10"), ("keyed", "10")] {
                #expect(try await s.show(id)["balance"] == .string(balance), "\(id)")
            }
            #expect(try await s.admin("GET", "/v1/audit").value["clean"] == true)

            // The metrics count decisions by outcome and reason.
            let metrics = try await s.http.send("GET", "/metrics")
            #expect(metrics.status == 200)
            for reason in ["insufficient_credit", "rate_limited", "token_rate_limited", "concurrency_limited", "spend_cap_reached",
                           "account_frozen", "key_revoked", "unknown_key"] {
                #expect(metrics.text.contains(#"tollgate_decisions_total{outcome="denied",reason="\#(reason)"} 1"#), "\(reason)")
            }
            #expect(metrics.text.contains(#"tollgate_decisions_total{outcome="denied",reason="unknown_meter"} 2"#))
            #expect(metrics.text.contains(#"tollgate_decisions_total{outcome="allowed",reason="none"} 5"#))
            #expect(metrics.text.contains("tollgate_decision_duration_seconds_count 15"))
            #expect(metrics.text.contains("tollgate_redis_pipeline_depth"))
        }
    }

    @Test("a key's own limits apply to calls by key; the decision lists key and account limits")
    func keyLimits() async throws {
        try await E2EServer.with { s in
            try await s.price("api_call", "0.5")
            try await s.account("acme", credit: "10")
            let key = try await s.key(for: "acme")
            try await s.limits("/v1/keys/\(key.id)/limits", ["rpm": 2, "daily_cap": "3"])
            try await s.limits("/v1/accounts/acme/limits", ["rph": 100])
            let first = try await s.authorize(["key": key.secret, "request_id": "a", "usage": [["meter": "api_call", "quantity": 1]]])
            #expect(first["allowed"] == true)
            let names = Set(first["limits"]?.array?.compactMap { $0["name"]?.string } ?? [])
            #expect(names == ["account.rph", "key.rpm", "key.daily_cap"])
            #expect(try await s.authorize(["key": key.secret, "request_id": "b", "usage": [["meter": "api_call", "quantity": 1]]])["allowed"] == true)
            let third = try await s.authorize(["key": key.secret, "request_id": "c", "usage": [["meter": "api_call", "quantity": 1]]])
            #expect(third["reason"] == "rate_limited")
            // By account, the key's limits do not apply.
            #expect(try await s.authorize(["account": "acme", "request_id": "d", "usage": [["meter": "api_call", "quantity": 1]]])["allowed"] == true)
        }
    }
}
