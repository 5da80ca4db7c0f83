import Foundation
import Testing
import TollgateTestSupport

/// Drives the real `tollgate` binary against a real redis-server.
struct CLI {
    let server: RedisServer

    init() async throws {
        server = try await RedisServer()
    }

    /// The test's Redis, and a coupon secret of its own (else the CLI would keep one in the
    /// working folder's `.tollgate`).
    var environment: [String: String] { ["TOLLGATE_REDIS_URL": server.url, "TOLLGATE_COUPON_SECRET": "cli-test-coupon-secret"] }

    @discardableResult
    func run(_ arguments: String...) async throws -> CommandResult {
        try await CommandRunner.run(CommandRunner.product("tollgate"), arguments, environment: environment)
    }

    func json(_ arguments: String...) async throws -> Any {
        let result = try await CommandRunner.run(CommandRunner.product("tollgate"), arguments, environment: environment)
        #expect(result.status == 0 || result.status == 3, "\(result.stderr)")
        return try JSONSerialization.jsonObject(with: Data(result.stdout.utf8))
    }
}

@Suite("tollgate CLI, end to end")
struct CLITests {
    @Test("account create/show --json/freeze/unfreeze")
    func accounts() async throws {
        let cli = try await CLI()
        #expect(try await cli.run("account", "create", "acme", "--credit-limit", "2.5").status == 0)
        let shown = try #require(try await cli.json("account", "show", "acme", "--json") as? [String: String])
        #expect(shown == ["id": "acme", "status": "active", "balance": "0", "paid": "0", "promotional": "0", "held": "0", "available": "0", "credit_limit": "2.5"])
        let again = try await cli.run("account", "create", "acme")
        #expect(again.status == 1 && again.stderr.contains("account_exists"))
        #expect(try await cli.run("account", "freeze", "acme").stdout.contains("frozen"))
        let denied = try await cli.run("debit", "acme", "1", "--id", "d1")
        #expect(denied.status == 3 && denied.stdout.contains("frozen"))
        #expect(try await cli.run("account", "unfreeze", "acme").stdout.contains("active"))
        let text = try await cli.run("account", "show", "acme")
        #expect(text.stdout.contains("credit limit  2.5"))
        let missing = try await cli.run("account", "show", "nobody")
        #expect(missing.status == 1 && missing.stderr.contains("account_not_found"))
    }

    @Test("credit and debit: exit 0 allowed, 3 denied with a reason, 2 bad input; replays change nothing")
    func creditAndDebit() async throws {
        let cli = try await CLI()
        try await cli.run("account", "create", "a")
        #expect(try await cli.run("credit", "a", "10", "--id", "t1").status == 0)
        #expect(try await cli.run("credit", "a", "10", "--id", "t1").stdout.contains("replayed"))
        #expect(try await cli.run("credit", "a", "1", "--id", "g1", "--kind", "grant").status == 0)
        // A negative amount comes after `--` so it is not read as a flag.
        #expect(try await cli.run("credit", "a", "--id", "adj", "--kind", "adjustment", "--", "-0.5").status == 0)
        let negative = try await cli.run("credit", "a", "--id", "neg", "--", "-0.5")
        #expect(negative.status == 2 && negative.stderr.contains("must not be negative"))
        let debit = try #require(try await cli.json("debit", "a", "2.5", "--id", "d1", "--json") as? [String: Any])
        #expect(debit["allowed"] as? Bool == true)
        #expect(debit["balance"] as? String == "8")
        #expect(debit["amount"] as? String == "2.5")
        let denied = try await cli.run("debit", "a", "100", "--id", "d2")
        #expect(denied.status == 3)
        #expect(denied.stdout.contains("insufficient credit"))
        let deniedJSON = try #require(try await cli.json("debit", "a", "100", "--id", "d3", "--json") as? [String: Any])
        #expect(deniedJSON["allowed"] as? Bool == false && deniedJSON["reason"] as? String == "insufficient_credit")
        for bad in ["0", "-1", "1.0000001", "1e3", "abc", "9007199254.740992"] {
            let result = try await cli.run("debit", "a", "--id", "bad-\(bad)", "--", bad)
            #expect(result.status == 2, "\(bad): \(result.stderr)")
            #expect(result.stderr.contains("invalid_amount"), "\(bad)")
        }
        #expect(try await cli.run("debit", "a", "1").status == 2)  // --id is required
        #expect(try await cli.run("debit", "a", "1", "--id", "x", "--bogus").status == 2)
        let account = try #require(try await cli.json("account", "show", "a", "--json") as? [String: String])
        #expect(account["balance"] == "8")
    }

    @Test("hold prints a hold id; capture and release use it")
    func holds() async throws {
        let cli = try await CLI()
        try await cli.run("account", "create", "a")
        try await cli.run("credit", "a", "5", "--id", "t")
        let hold = try await cli.run("hold", "a", "2", "--ttl", "30s", "--id", "h1")
        #expect(hold.status == 0)
        let holdID = hold.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(holdID.hasPrefix("h1."))
        #expect(try await cli.run("capture", holdID, "0.5", "--id", "c1").status == 0)
        let over = try await cli.run("capture", holdID, "10", "--id", "c2")
        #expect(over.status == 3 && over.stdout.contains("insufficient credit"))
        let release = try await cli.run("release", holdID)
        #expect(release.status == 0 && release.stdout.contains("released 1.5"))
        #expect(try await cli.run("release", holdID, "--id", "again").status == 3)
        #expect(try await cli.run("capture", "not-a-hold", "1", "--id", "c3").status == 2)
        #expect(try await cli.run("hold", "a", "1", "--ttl", "soon", "--id", "h2").status == 2)
        let account = try #require(try await cli.json("account", "show", "a", "--json") as? [String: String])
        #expect(account["balance"] == "4.5" && account["held"] == "0")
    }

    @Test("ledger --json lists entries newest first with the documented fields")
    func ledger() async throws {
        let cli = try await CLI()
        try await cli.run("account", "create", "a")
        try await cli.run("credit", "a", "5", "--id", "t")
        try await cli.run("debit", "a", "1.25", "--id", "d")
        let entries = try #require(try await cli.json("ledger", "a", "--json") as? [[String: Any]])
        #expect(entries.count == 2)
        #expect(entries.map { $0["kind"] as? String } == ["debit", "topup"])
        #expect(entries.map { $0["amount"] as? String } == ["-1.25", "5"])
        #expect(entries.map { $0["balance"] as? String } == ["3.75", "5"])
        #expect(entries.map { $0["request_id"] as? String } == ["d", "t"])
        for entry in entries {
            #expect(entry["id"] is String)
            #expect((entry["time"] as? String)?.hasSuffix("Z") == true)
        }
        let limited = try #require(try await cli.json("ledger", "a", "--json", "--limit", "1") as? [[String: Any]])
        #expect(limited.count == 1)
        #expect(try await cli.run("ledger", "a", "--limit", "0").status == 2)
    }

    @Test("audit exits 0 when clean and 1 with the drifting account listed")
    func audit() async throws {
        let cli = try await CLI()
        try await cli.run("account", "create", "good")
        try await cli.run("account", "create", "bad")
        try await cli.run("credit", "bad", "5", "--id", "t")
        let clean = try await cli.run("audit")
        #expect(clean.status == 0 && clean.stdout.contains("clean"))
        let client = cli.server.client()
        _ = try await client.send("HINCRBY", "tg:{a:bad}:acct", "balance", "3")
        let drift = try await cli.run("audit")
        #expect(drift.status == 1)
        #expect(drift.stdout.contains("bad"))
        #expect(!drift.stdout.contains("good"))
        let report = try #require(try JSONSerialization.jsonObject(with: Data(try await cli.run("audit", "--json").stdout.utf8)) as? [String: Any])
        #expect(report["clean"] as? Bool == false)
        #expect((report["drifting"] as? [[String: Any]])?.first?["account"] as? String == "bad")
    }

    @Test("unreachable Redis or a bad address is a clear error, not a hang")
    func redisErrors() async throws {
        let port = try RedisServer.freePort()
        let down = try await CommandRunner.run(CommandRunner.product("tollgate"), ["account", "show", "a", "--redis", "redis://127.0.0.1:\(port)"])
        #expect(down.status == 1 && down.stderr.contains("redis_unavailable"))
        let bad = try await CommandRunner.run(CommandRunner.product("tollgate"), ["account", "show", "a", "--redis", "http://x"])
        #expect(bad.status == 2 && bad.stderr.contains("unknown scheme"))
    }

    @Test("help explains the commands and exit codes")
    func help() async throws {
        let result = try await CommandRunner.run(CommandRunner.product("tollgate"), ["--help"])
        #expect(result.status == 0)
        for word in ["account", "credit", "debit", "hold", "capture", "release", "ledger", "audit", "Exit codes"] {
            #expect(result.stdout.contains(word), "\(word)")
        }
    }
}

@Suite("tollgate CLI: billing verbs")
struct BillingCLITests {
    @Test("coupon create --json, coupon redeem, grant, usage, report --csv, deposits, ledger archive; bad input exits 2")
    func billingVerbs() async throws {
        let cli = try await CLI()
        #expect(try await cli.run("account", "create", "bill").status == 0)
        #expect(try await cli.run("credit", "bill", "10", "--id", "t1").status == 0)
        let created = try #require(try await cli.json("coupon", "create", "--amount", "2", "--count", "3", "--expires", "2099-01-01", "--json") as? [String: Any])
        let codes = try #require(created["codes"] as? [String])
        #expect(codes.count == 3)
        let redeemed = try await cli.run("coupon", "redeem", "bill", codes[0])
        #expect(redeemed.status == 0 && redeemed.stdout.contains("redeemed: 2"))
        let twice = try await cli.run("coupon", "redeem", "bill", codes[0])
        #expect(twice.status == 3 && twice.stdout.contains("already"))
        // A batch made with a request id is made once.
        let batch = try await cli.run("coupon", "create", "--amount", "1", "--count", "2", "--expires", "2099-01-01", "--id", "b-1")
        let batchAgain = try await cli.run("coupon", "create", "--amount", "1", "--count", "2", "--expires", "2099-01-01", "--id", "b-1")
        #expect(batch.status == 0 && batch.stdout.split(separator: "\n").count == 2 && batchAgain.stdout == batch.stdout, "\(batch) \(batchAgain)")
        #expect(try await cli.run("coupon", "create", "--amount", "1", "--id", "b-2").status == 2)
        // With a request id, a retry replays the first answer.
        #expect(try await cli.run("account", "create", "bill-retry").status == 0)
        #expect(try await cli.run("coupon", "redeem", "bill-retry", codes[2], "--id", "r-1").status == 0)
        let retried = try await cli.run("coupon", "redeem", "bill-retry", codes[2], "--id", "r-1")
        #expect(retried.status == 0 && retried.stdout.contains("redeemed: 2"), "\(retried)")
        #expect(try await cli.run("grant", "bill", "1.5", "--expires", "2099-01-01T00:00:00Z", "--id", "g1").status == 0)
        #expect(try await cli.run("grant", "bill", "1.5", "--expires", "next week", "--id", "g2").status == 2)
        #expect(try await cli.run("debit", "bill", "4", "--id", "d1").status == 0)
        let shown = try #require(try await cli.json("account", "show", "bill", "--json") as? [String: String])
        #expect(shown["balance"] == "9.5" && shown["promotional"] == "0" && shown["paid"] == "9.5")
        let usage = try await cli.run("usage", "bill", "--from", "2020-01-01", "--by", "meter,day", "--csv")
        #expect(usage.status == 0 && usage.stdout.contains("totals,,,,4,0"))
        let report = try await cli.run("report", "bill", "--from", "2020-01-01", "--csv")
        #expect(report.status == 0)
        let lines = report.stdout.split(separator: "\r\n")
        #expect(lines.first?.hasPrefix("time,entry_id,kind,credit,debit,balance") == true)
        #expect(lines.last?.contains(",totals,13.5,4,9.5,") == true)
        #expect(try await cli.run("deposits", "bill").stdout.contains("no deposits"))
        let archive = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-archive-\(UUID().uuidString).jsonl")
        defer { try? FileManager.default.removeItem(at: archive) }
        let archived = try await cli.run("ledger", "archive", "--before", "2099-01-01", "--to", archive.path, "--account", "bill")
        #expect(archived.status == 0 && archived.stdout.contains("archived 4 entries"))
        let exported = try String(contentsOf: archive, encoding: .utf8).split(separator: "\n")
        #expect(exported.count == 4 && exported.allSatisfy { $0.contains("\"account\":\"bill\"") })
        #expect(try await cli.run("audit").status == 0)
        #expect(try await cli.run("ledger", "bill").stdout.isEmpty)
    }
}
