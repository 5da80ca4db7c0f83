import Foundation
import Testing
import TollgateTestSupport

/// The dashboard in headless Chromium (Debian's `chromium`, `chromium-driver` and
/// `python3-selenium`, which `make deps` installs): `Tests/Browser/dashboard_test.py` signs
/// in with an account token, watches a debit made through the API arrive within one second
/// without a reload, redeems a coupon and downloads the CSV report. Screenshots go to
/// `.build/browser-screenshots/`.
@Suite("Dashboard in a browser")
struct BrowserTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test("account holder: live balance, coupon, CSV report", .enabled(if: !TestRedis.isCluster, "runs once, on a single Redis"))
    func accountHolder() async throws {
        for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
            try #require(FileManager.default.isExecutableFile(atPath: tool),
                         "\(tool) is missing: run `make deps` (apt-get install chromium chromium-driver python3-selenium)")
        }
        try await E2EServer.with { server in
            try await server.price("api_call", "0.25")
            try await server.account("browser-acct", credit: "10")
            let token = try await server.accountToken(for: "browser-acct")
            let coupons = try await server.admin("POST", "/v1/coupons", ["amount": "5", "count": 1, "expires": "2099-01-01"])
            try #require(coupons.status == 201, "\(coupons)")
            let code = try #require(coupons.value["codes"]?[0]?.string)
            let out = Self.packageRoot.appendingPathComponent(".build/browser-screenshots")
            try? FileManager.default.removeItem(at: out)
            let result = try await CommandRunner.run(
                URL(fileURLWithPath: "/usr/bin/python3"),
                [Self.packageRoot.appendingPathComponent("Tests/Browser/dashboard_test.py").path,
                 "--base", "http://127.0.0.1:\(server.port)", "--account", "browser-acct", "--token", token,
                 "--service-token", E2ETokens.service, "--coupon", code, "--out", out.path])
            #expect(result.status == 0, "browser test failed:\n\(result.stdout)\n\(result.stderr.suffix(6000))")
        }
    }
}
