import Foundation
import Testing
import TollgateTestSupport

@Suite("account tokens are bounded on the costly routes")
struct AccountTokenQuotaTests {
    @Test("an account token gets 120 costly calls a minute (usage, reports, deposits, redemptions), then 429 rate_limited; other tokens, the admin and plain reads are not held back; a usage range by the hour is bounded")
    func costlyCallsAreBounded() async throws {
        try await E2EServer.with(environment: BillingE2ETests.environment) { s in
            try await s.account("looper")
            let token = try await s.accountToken(for: "looper")
            let second = try await s.accountToken(for: "looper")
            let paths = ["/v1/accounts/looper/usage?by=meter", "/v1/accounts/looper/reports/usage.json",
                         "/v1/accounts/looper/reports/transactions.csv", "/v1/accounts/looper/reports/usage.csv"]
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for n in 0..<120 {
                    group.addTask { try await s.request("GET", paths[n % paths.count], token: token).status }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses.allSatisfy { $0 == 200 }, "\(Dictionary(grouping: statuses, by: { $0 }).mapValues(\.count))")
            let over = try await s.request("GET", paths[0], token: token)
            #expect(over.status == 429 && over.errorCode == "rate_limited" && over.header("Retry-After").flatMap(Int.init) ?? 0 >= 1, "\(over)")
            let deposit = try await s.request("POST", "/v1/accounts/looper/deposits", token: token,
                                              ["amount": "1", "token": "USDT", "provider": "moonpay"])
            #expect(deposit.status == 429 && deposit.errorCode == "rate_limited", "\(deposit)")
            let redeem = try await s.request("POST", "/v1/accounts/looper/redeem", token: token, ["code": "TG-AAAA-BBBB-CCCC"])
            #expect(redeem.status == 429 && redeem.errorCode == "rate_limited", "\(redeem)")
            // Nothing was left behind by the refused deposit.
            #expect((try await s.request("GET", "/v1/accounts/looper/deposits", token: second).value["deposits"]?.array ?? []).isEmpty)
            // Plain reads, another token and the admin go on.
            #expect(try await s.request("GET", "/v1/accounts/looper", token: token).status == 200)
            #expect(try await s.request("GET", paths[0], token: second).status == 200)
            #expect(try await s.admin("GET", paths[0]).status == 200)
            // A breakdown by the hour reads one aggregate per hour: 166 days at most.
            let long = try await s.admin("GET", "/v1/accounts/looper/usage?by=meter,hour&from=2026-01-01&to=2026-08-01")
            #expect(long.status == 400 && long.errorCode == "invalid_argument", "\(long)")
            #expect(try await s.admin("GET", "/v1/accounts/looper/usage?by=meter,hour&from=2026-01-01&to=2026-03-01").status == 200)
        }
    }
}
