import Crypto
import Foundation
import Testing
import TollgateTestSupport

@Suite("billing over HTTP: deposits and signed webhooks, coupons, history, usage, reports")
struct BillingE2ETests {
    static let webhookKey = "wk_test_5a1e"
    static let environment = [
        "TOLLGATE_MOONPAY_WEBHOOK_KEY": webhookKey,
        "TOLLGATE_DEPOSIT_ADDRESS_USDT": "TRON:TXYZtestAddress000000000000000001",
    ]

    /// MoonPay's `Moonpay-Signature-V2` header, computed here with swift-crypto, apart from the
    /// server's implementation: HMAC-SHA256 over "<t>.<raw body>", lowercase hex.
    static func moonPaySignature(_ body: [UInt8], key: String = webhookKey, time: Int = Int(Date().timeIntervalSince1970)) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Array("\(time).".utf8) + body, using: SymmetricKey(data: Array(key.utf8)))
        return "t=\(time),s=" + mac.map { String(format: "%02x", $0) }.joined()
    }

    static let receiveAddress = "TXYZtestAddress000000000000000001"

    static func moonPayBody(deposit: String, status: String = "completed", amount: String = "50", transaction: String = "mp_tx_1",
                            wallet: String = receiveAddress) -> [UInt8] {
        Array("""
        {"type":"transaction_updated","data":{"id":"\(transaction)","status":"\(status)","externalTransactionId":"\(deposit)","quoteCurrencyAmount":\(amount),"currency":{"code":"usdt_trx"},"walletAddress":"\(wallet)"}}
        """.utf8)
    }

    func webhook(_ s: E2EServer, _ body: [UInt8], signature: String?) async throws -> TestHTTPResponse {
        var headers = [("Content-Type", "application/json")]
        if let signature { headers.append(("Moonpay-Signature-V2", signature)) }
        return try await s.http.send("POST", "/v1/webhooks/moonpay", headers: headers, body: body)
    }

    @Test("a deposit confirmed by a MoonPay webhook delivered 20 times concurrently credits once; bad signatures change nothing")
    func moonPayDeposit() async throws {
        try await E2EServer.with(environment: Self.environment) { s in
            try await s.account("buyer")
            let token = try await s.accountToken(for: "buyer")
            let created = try await s.request("POST", "/v1/accounts/buyer/deposits", token: token,
                                              ["amount": "50", "token": "USDT", "provider": "moonpay"])
            #expect(created.status == 201, "\(created)")
            let deposit = try #require(created.value["id"]?.string)
            #expect(created.value["status"] == "pending" && created.value["amount"] == "50")
            #expect(created.value["checkout_url"]?.string?.contains("externalTransactionId=\(deposit)") == true)
            #expect(created.value["receive"]?["address"] == "TXYZtestAddress000000000000000001")
            #expect(created.value["receive"]?["network"] == "TRON")

            let body = Self.moonPayBody(deposit: deposit)
            // Refused, and nothing changes: tampered body, wrong key, stale timestamp, no header.
            var tampered = body
            tampered[tampered.firstIndex(of: UInt8(ascii: "5"))!] = UInt8(ascii: "9")
            let refusals = [
                try await webhook(s, tampered, signature: Self.moonPaySignature(body)),
                try await webhook(s, body, signature: Self.moonPaySignature(body, key: "not-the-key")),
                try await webhook(s, body, signature: Self.moonPaySignature(body, time: Int(Date().timeIntervalSince1970) - 301)),
                try await webhook(s, body, signature: nil),
                try await webhook(s, body, signature: "t=1,s=zz"),
            ]
            for response in refusals {
                #expect([400, 401].contains(response.status), "\(response)")
                #expect(response.value["error"]?["code"] != nil)
            }
            #expect(try await s.show("buyer")["balance"] == "0")

            // Delivered 20 times at once: credited once.
            let signature = Self.moonPaySignature(body)
            let answers = try await withThrowingTaskGroup(of: TestHTTPResponse.self) { group in
                for _ in 0..<20 { group.addTask { try await webhook(s, body, signature: signature) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(answers.allSatisfy { $0.status == 200 })
            #expect(answers.filter { $0.value["status"] == "credited" }.count == 1)
            #expect(answers.filter { $0.value["status"] == "duplicate" }.count == 19)
            let account = try await s.show("buyer")
            #expect(account["balance"] == "50" && account["paid"] == "50")
            let listed = try await s.request("GET", "/v1/accounts/buyer/deposits", token: token)
            #expect(listed.value["deposits"]?[0]?["status"] == "completed" && listed.value["deposits"]?[0]?["flagged"] == false)

            // A second deposit that receives less than asked: credited as received, flagged.
            let second = try await s.request("POST", "/v1/accounts/buyer/deposits", token: token,
                                             ["amount": "20", "token": "USDT", "provider": "moonpay"])
            let secondID = try #require(second.value["id"]?.string)
            let short = Self.moonPayBody(deposit: secondID, amount: "19.5", transaction: "mp_tx_2")
            let answer = try await webhook(s, short, signature: Self.moonPaySignature(short))
            #expect(answer.value["status"] == "amount_mismatch")
            #expect(try await s.show("buyer")["balance"] == "69.5")
            // Paid, but to someone else's wallet (anyone can open the widget with our deposit id):
            // nothing credited, the deposit flagged.
            let fourth = try await s.request("POST", "/v1/accounts/buyer/deposits", token: token,
                                             ["amount": "30", "token": "USDT", "provider": "moonpay"])
            let fourthID = try #require(fourth.value["id"]?.string)
            let diverted = Self.moonPayBody(deposit: fourthID, amount: "30", transaction: "mp_tx_4", wallet: "TAttackersOwnWallet0000000000000001")
            let divertedAnswer = try await webhook(s, diverted, signature: Self.moonPaySignature(diverted))
            #expect(divertedAnswer.value["status"] == "rejected" && divertedAnswer.value["detail"] == "wrong_destination")
            #expect(try await s.show("buyer")["balance"] == "69.5")
            // A failed one.
            let third = try await s.request("POST", "/v1/accounts/buyer/deposits", token: token,
                                            ["amount": "5", "token": "USDT", "provider": "moonpay"])
            let thirdID = try #require(third.value["id"]?.string)
            let failedBody = Self.moonPayBody(deposit: thirdID, status: "failed", transaction: "mp_tx_3")
            #expect(try await webhook(s, failedBody, signature: Self.moonPaySignature(failedBody)).value["status"] == "failed")

            // Bad input on deposits.
            #expect(try await s.request("POST", "/v1/accounts/buyer/deposits", token: token,
                                        ["amount": "5", "token": "DOGE", "provider": "moonpay"]).status == 422)
            #expect(try await s.request("POST", "/v1/accounts/buyer/deposits", token: token,
                                        ["amount": "5", "token": "USDT", "provider": "paypal"]).status == 400)
            #expect(try await s.request("POST", "/v1/accounts/buyer/deposits", token: token,
                                        ["amount": "-5", "token": "USDT", "provider": "moonpay"]).status == 400)
            let audit = try await s.admin("GET", "/v1/audit")
            #expect(audit.value["clean"] == true)
        }
    }

    @Test("a deposit started again with its request id (20 times at once) is the same deposit, made once; another deposit under that id is 409; without an id each call is a new deposit")
    func depositRetryIsTheSameDeposit() async throws {
        try await E2EServer.with(environment: Self.environment) { s in
            try await s.account("retrier")
            try await s.account("neighbour")
            let token = try await s.accountToken(for: "retrier")
            let neighbour = try await s.accountToken(for: "neighbour")
            let body: [String: Any] = ["amount": "12", "token": "USDT", "provider": "moonpay", "request_id": "topup-7"]
            let made = try await withThrowingTaskGroup(of: TestHTTPResponse.self) { group in
                for _ in 0..<20 {
                    group.addTask {
                        try await s.request("POST", "/v1/accounts/retrier/deposits", token: token,
                                            ["amount": "12", "token": "USDT", "provider": "moonpay", "request_id": "topup-7"])
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let ids = Set(made.compactMap { $0.value["id"]?.string })
            #expect(made.allSatisfy { $0.status == 201 }, "\(made.filter { $0.status != 201 })")
            #expect(ids.count == 1, "\(ids)")
            let listed = try await s.request("GET", "/v1/accounts/retrier/deposits", token: token).value["deposits"]?.array ?? []
            #expect(listed.count == 1, "\(listed)")
            // The same request id for another amount is another deposit: refused.
            let other = try await s.request("POST", "/v1/accounts/retrier/deposits", token: token, body.merging(["amount": "13"]) { $1 })
            #expect(other.status == 409 && other.errorCode == "deposit_exists", "\(other)")
            // Request ids are per account.
            let theirs = try await s.request("POST", "/v1/accounts/neighbour/deposits", token: neighbour, body)
            let theirID = theirs.value["id"]?.string
            #expect(theirs.status == 201 && theirID != nil && !ids.contains(theirID!), "\(theirs)")
            // Without a request id every call starts a deposit.
            let plain: [String: Any] = ["amount": "12", "token": "USDT", "provider": "moonpay"]
            #expect(try await s.request("POST", "/v1/accounts/retrier/deposits", token: token, plain).status == 201)
            #expect(try await s.request("POST", "/v1/accounts/retrier/deposits", token: token, plain).status == 201)
            #expect((try await s.request("GET", "/v1/accounts/retrier/deposits", token: token).value["deposits"]?.array ?? []).count == 3)
        }
    }

    @Test("an account token starts at most 100 deposits in 24 hours: the 101st is 429 and leaves nothing behind",
          .enabled(if: !TestRedis.isCluster, "counts the keys of the one Redis"))
    func depositsAreCapped() async throws {
        try await E2EServer.with(environment: Self.environment) { s in
            try await s.account("flooder")
            let token = try await s.accountToken(for: "flooder")
            let body: [String: Any] = ["amount": "1", "token": "USDT", "provider": "moonpay"]
            for n in 0..<100 {
                let made = try await s.request("POST", "/v1/accounts/flooder/deposits", token: token, body)
                #expect(made.status == 201, "deposit \(n): \(made)")
            }
            let redis = s.testRedis.client(connections: 1)
            defer { redis.close() }
            let keysBefore = try await redis.send("DBSIZE").int64
            let refused = try await s.request("POST", "/v1/accounts/flooder/deposits", token: token, body)
            #expect(refused.status == 429 && refused.errorCode == "too_many_deposits", "\(refused)")
            // No record, no history entry, not even the deposit-id index the call reserved first.
            let deposits = try await s.request("GET", "/v1/accounts/flooder/deposits", token: token).value["deposits"]?.array ?? []
            #expect(deposits.count == 100)
            let keysAfter = try await redis.send("DBSIZE").int64
            #expect(keysAfter == keysBefore, "keys before \(String(describing: keysBefore)), after \(String(describing: keysAfter))")
        }
    }

    @Test("coupons over HTTP: the operator creates codes, the account holder redeems; reasons and guessing limits; history, usage and a CSV report that reconciles")
    func couponsHistoryReports() async throws {
        try await E2EServer.with(environment: Self.environment) { s in
            try await s.account("holder", credit: "10")
            try await s.price("calls", "0.25")
            let token = try await s.accountToken(for: "holder")
            let created = try await s.admin("POST", "/v1/coupons", ["amount": "5", "count": 3, "max_redemptions": 1, "expires": "2099-01-01"])
            #expect(created.status == 201, "\(created)")
            let codes = (created.value["codes"]?.array ?? []).compactMap { $0.string }
            #expect(codes.count == 3 && Set(codes).count == 3)
            // Only the operator creates coupons.
            #expect(try await s.request("POST", "/v1/coupons", token: token, ["amount": "5", "expires": "2099-01-01"]).status == 403)

            let redeemed = try await s.request("POST", "/v1/accounts/holder/redeem", token: token, ["code": codes[0]])
            #expect(redeemed.status == 200 && redeemed.value["amount"] == "5", "\(redeemed)")
            #expect(redeemed.value["account"]?["promotional"] == "5" && redeemed.value["account"]?["balance"] == "15")
            let again = try await s.request("POST", "/v1/accounts/holder/redeem", token: token, ["code": codes[0]])
            #expect(again.status == 422 && again.value["error"]?["code"] == "already_redeemed")
            let bogus = try await s.request("POST", "/v1/accounts/holder/redeem", token: token, ["code": "TG-AAAA-BBBB-CCCC"])
            #expect(bogus.status == 422 && bogus.value["error"]?["code"] == "invalid")
            #expect(try await s.request("POST", "/v1/accounts/holder/redeem", token: token, ["coupon": "x"]).status == 400)

            for n in 0..<4 {
                _ = try await s.authorize(["account": "holder", "request_id": "call-\(n)", "usage": [["meter": "calls", "quantity": 2]]])
            }
            let history = try await s.request("GET", "/v1/accounts/holder/payments", token: token)
            #expect(history.value["entries"]?.array?.map { $0["kind"] } == ["coupon", "topup"])
            let usage = try await s.request("GET", "/v1/accounts/holder/usage?by=meter,day&from=2020-01-01", token: token)
            #expect(usage.status == 200 && usage.value["total"]?["amount"] == "2", "\(usage)")
            #expect(try await s.request("GET", "/v1/accounts/holder/usage?by=meter,hour,day", token: token).status == 400)
            #expect(try await s.request("GET", "/v1/accounts/holder/usage?from=yesterday", token: token).status == 400)

            let report = try await s.request("GET", "/v1/accounts/holder/reports/transactions.csv?from=2020-01-01", token: token)
            #expect(report.status == 200 && report.header("Content-Type")?.hasPrefix("text/csv") == true)
            let rows = report.text.split(separator: "\r\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
            #expect(rows.first?.prefix(6) == ["time", "entry_id", "kind", "credit", "debit", "balance"])
            #expect(rows[1][2] == "opening_balance" && rows[1][5] == "0")
            let totals = try #require(rows.last)
            #expect(totals[2] == "totals" && totals[3] == "15" && totals[4] == "2" && totals[5] == "13")
            #expect(rows.count == 2 + 6 + 1)  // header, opening, 2 credits + 4 debits, totals
            let json = try await s.request("GET", "/v1/accounts/holder/reports/transactions.json?from=2020-01-01", token: token)
            #expect(json.value["closing_balance"] == "13" && json.value["entry_count"] == 6)
            let usageCSV = try await s.request("GET", "/v1/accounts/holder/reports/usage.csv?from=2020-01-01&by=meter", token: token)
            #expect(usageCSV.text.hasPrefix("period,meter,model,key,amount,quantity\r\n") && usageCSV.text.contains("totals,,,,2,8"))
            // Another account's token sees nothing of it.
            try await s.account("other")
            let otherToken = try await s.accountToken(for: "other")
            #expect(try await s.request("GET", "/v1/accounts/holder/reports/transactions.csv", token: otherToken).status == 403)
        }
    }

    @Test("coupon creation retried with its request id (5 times at once) returns the same codes and mints none; other figures under that id are 409")
    func couponCreationRetry() async throws {
        try await E2EServer.with(environment: Self.environment) { s in
            let redis = s.testRedis.client(connections: 1)
            defer { redis.close() }
            func records() async throws -> Int { try await redis.scanKeys(matching: "tg:{cp:*}:coupon").count }
            let first = try await s.admin("POST", "/v1/coupons", ["amount": "2", "count": 3, "expires": "2099-01-01", "request_id": "batch-1"])
            let codes = (first.value["codes"]?.array ?? []).compactMap(\.string)
            #expect(first.status == 201 && codes.count == 3, "\(first)")
            let retries = try await withThrowingTaskGroup(of: TestHTTPResponse.self) { group in
                for _ in 0..<5 {
                    group.addTask { try await s.admin("POST", "/v1/coupons", ["amount": "2", "count": 3, "expires": "2099-01-01", "request_id": "batch-1"]) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            for retry in retries {
                #expect(retry.status == 201 && (retry.value["codes"]?.array ?? []).compactMap(\.string) == codes, "\(retry)")
            }
            #expect(try await records() == 3)
            let other = try await s.admin("POST", "/v1/coupons", ["amount": "3", "count": 3, "expires": "2099-01-01", "request_id": "batch-1"])
            #expect(other.status == 409 && other.errorCode == "idempotency_conflict", "\(other)")
            let fresh = try await s.admin("POST", "/v1/coupons", ["amount": "2", "count": 3, "expires": "2099-01-01"])
            let freshCodes = Set((fresh.value["codes"]?.array ?? []).compactMap(\.string))
            #expect(freshCodes.count == 3 && freshCodes.isDisjoint(with: codes), "\(fresh)")
            #expect(try await records() == 6)
            // The codes work as any others.
            try await s.account("batcher")
            let token = try await s.accountToken(for: "batcher")
            #expect(try await s.request("POST", "/v1/accounts/batcher/redeem", token: token, ["code": codes[2]]).status == 200)
        }
    }

    @Test("a redemption retried with its request id replays the first answer, even once the code ran out; the id for another code is a conflict; refusals are decided afresh")
    func redemptionRetryReplays() async throws {
        try await E2EServer.with(environment: Self.environment) { s in
            try await s.account("retry")
            try await s.account("other")
            let token = try await s.accountToken(for: "retry")
            let otherToken = try await s.accountToken(for: "other")
            let created = try await s.admin("POST", "/v1/coupons", ["amount": "5", "count": 2, "max_redemptions": 1, "expires": "2099-01-01"])
            let codes = (created.value["codes"]?.array ?? []).compactMap(\.string)
            #expect(codes.count == 2, "\(created)")

            let first = try await s.request("POST", "/v1/accounts/retry/redeem", token: token, ["code": codes[0], "request_id": "redeem-1"])
            #expect(first.status == 200 && first.value["replayed"] == false && first.value["amount"] == "5", "\(first)")
            // The answer was lost; the client retries with the same id (concurrently, too).
            let retries = try await withThrowingTaskGroup(of: TestHTTPResponse.self) { group in
                for _ in 0..<5 {
                    group.addTask { try await s.request("POST", "/v1/accounts/retry/redeem", token: token, ["code": codes[0], "request_id": "redeem-1"]) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            for retry in retries {
                #expect(retry.status == 200 && retry.value["replayed"] == true, "\(retry)")
                #expect(retry.value["entry_id"] == first.value["entry_id"] && retry.value["amount"] == "5")
            }
            let account = try await s.show("retry")
            #expect(account["balance"] == "5" && account["promotional"] == "5", "credited more than once: \(account)")
            // Without the id a second redemption is what it is.
            let again = try await s.request("POST", "/v1/accounts/retry/redeem", token: token, ["code": codes[0]])
            #expect(again.status == 422 && again.errorCode == "already_redeemed", "\(again)")
            // The same id for another code is another operation.
            let conflict = try await s.request("POST", "/v1/accounts/retry/redeem", token: token, ["code": codes[1], "request_id": "redeem-1"])
            #expect(conflict.status == 409 && conflict.errorCode == "idempotency_conflict", "\(conflict)")
            // A request id is the account's own: another account's same id is a new redemption.
            let exhausted = try await s.request("POST", "/v1/accounts/other/redeem", token: otherToken, ["code": codes[0], "request_id": "redeem-1"])
            #expect(exhausted.status == 422 && exhausted.errorCode == "exhausted", "\(exhausted)")
            // A refusal is not kept: the same id then redeems a good code.
            let bogus = try await s.request("POST", "/v1/accounts/other/redeem", token: otherToken, ["code": "TG-AAAA-BBBB-CCCC", "request_id": "redeem-2"])
            #expect(bogus.status == 422 && bogus.errorCode == "invalid", "\(bogus)")
            let good = try await s.request("POST", "/v1/accounts/other/redeem", token: otherToken, ["code": codes[1], "request_id": "redeem-2"])
            #expect(good.status == 200 && good.value["replayed"] == false, "\(good)")
            #expect(try await s.admin("GET", "/v1/audit").value["clean"] == true)
        }
    }

    @Test("failed coupon attempts count per client address: behind a trusted proxy by X-Forwarded-For, otherwise by the peer")
    func guessingPerAddress() async throws {
        try await E2EServer.with(arguments: ["--trusted-proxy", "127.0.0.1"], environment: Self.environment) { s in
            let good = try await s.admin("POST", "/v1/coupons", ["amount": "1", "count": 1, "max_redemptions": 5, "expires": "2099-01-01"])
            let code = try #require(good.value["codes"]?[0]?.string)
            func redeem(_ account: String, _ code: String, from address: String) async throws -> TestHTTPResponse {
                try await s.http.json("POST", "/v1/accounts/\(account)/redeem", token: E2ETokens.admin,
                                      headers: [("X-Forwarded-For", "203.0.113.7, \(address)")], body: ["code": code])
            }
            // Ten bad codes from one client, spread over ten accounts (so no account limit trips).
            for n in 0..<10 {
                try await s.account("guess-\(n)")
                #expect(try await redeem("guess-\(n)", "TG-BAD0-BAD0-BA\(n)", from: "198.51.100.1").status == 422)
            }
            try await s.account("fresh")
            let blocked = try await redeem("fresh", code, from: "198.51.100.1")
            #expect(blocked.status == 429 && blocked.value["error"]?["code"] == "too_many_attempts" && blocked.header("Retry-After") != nil)
            // Another client behind the same proxy is not blocked.
            #expect(try await redeem("fresh", code, from: "198.51.100.2").status == 200)
        }
    }
}
