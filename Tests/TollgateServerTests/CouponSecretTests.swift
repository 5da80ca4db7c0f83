import Crypto
import Foundation
import Testing
import TollgateRedis
import TollgateTestSupport

@Suite("coupon codes are kept under a keyed hash")
struct CouponSecretTests {
    /// What earlier versions stored a code under: the plain SHA-256 of its normalized text.
    static func plainHash(_ code: String) -> String {
        let normalized = code.uppercased().filter { $0 != "-" && $0 != " " }
        return SHA256.hash(data: Array(normalized.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// Every key name, hash field and value, and set member in Redis, as one text to search.
    static func everythingStored(_ redis: RedisClient) async throws -> String {
        var text = ""
        for key in try await redis.scanKeys(matching: "*") {
            text += key + "\n"
            switch try await redis.send("TYPE", key).string {
            case "hash": text += (try await redis.send("HGETALL", key).array ?? []).compactMap(\.string).joined(separator: "\n")
            case "set": text += (try await redis.send("SMEMBERS", key).array ?? []).compactMap(\.string).joined(separator: "\n")
            case "string": text += try await redis.send("GET", key).string ?? ""
            case "stream": text += "\(try await redis.send("XRANGE", key, "-", "+"))"
            default: break
            }
            text += "\n"
        }
        return text
    }

    @Test("codes made over HTTP and by the CLI leave no plain SHA-256 of the code in Redis; codes an earlier version kept unkeyed are moved at start, keep working and stay once per account; another secret is refused")
    func keyedHashAndMigration() async throws {
        let redis = try await RedisServer()
        defer { redis.stop() }
        let directory = ServerProcess.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        func start(_ arguments: [String] = []) async throws -> E2EServer {
            E2EServer(redis: redis, server: try await ServerProcess.start(
                redis: redis, dataDirectory: directory, adminToken: E2ETokens.admin, serviceToken: E2ETokens.service,
                arguments: ["--log-level", "warning", "--redis-timeout", "10s"] + arguments))
        }
        var s = try await start()
        #expect(s.server.process.stdout.contains("coupon secret generated, kept in"), "\(s.server.process.stdout)")
        let secretFile = directory.appendingPathComponent("coupon.secret")
        let mode = try FileManager.default.attributesOfItem(atPath: secretFile.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        try await s.account("early", credit: "1")
        try await s.account("late", credit: "1")
        let early = try await s.accountToken(for: "early")
        let late = try await s.accountToken(for: "late")
        let created = try await s.admin("POST", "/v1/coupons", ["amount": "2", "count": 2, "expires": "2099-01-01"])
        let fresh = (created.value["codes"]?.array ?? []).compactMap(\.string)
        #expect(created.status == 201 && fresh.count == 2, "\(created)")
        // The CLI beside the server finds the secret in the same data folder.
        let cli = try await CommandRunner.run(CommandRunner.product("tollgate"), [
            "coupon", "create", "--amount", "3", "--expires", "2099-01-01", "--data-dir", directory.path,
        ], environment: ["TOLLGATE_REDIS_URL": redis.url])
        #expect(cli.status == 0, "\(cli.stderr)")
        let cliCode = cli.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try await s.server.stop()

        // Coupons as an earlier version left them: under the plain hash, one of them already
        // redeemed by "early" (its claim in the redeemers set, its marker on the account).
        let client = redis.client()
        defer { client.close() }
        let shared = "TG-SHAR-EDCO-DE22"
        let single = "TG-SING-LECO-DE33"
        for (code, max) in [(shared, "5"), (single, "1")] {
            let hash = Self.plainHash(code)
            _ = try await client.send("HSET", "tg:{c:\(hash)}:coupon", "amount", "4000000", "max", max, "count", code == shared ? "1" : "0",
                                      "expires", "4070908800000", "account", "", "credit_expires", "0", "created", "1700000000000")
        }
        _ = try await client.send("SADD", "tg:{c:\(Self.plainHash(shared))}:by", "early")
        _ = try await client.send("HSET", "tg:{a:early}:acct", "cpn:\(Self.plainHash(shared))", "1700000000001")
        // An earlier version kept no record of a coupon secret.
        _ = try await client.send("DEL", "tg:coupon:key")

        s = try await start()
        #expect(!s.server.process.stdout.contains("coupon secret generated"))
        let again = try await s.request("POST", "/v1/accounts/early/redeem", token: early, ["code": shared])
        #expect(again.status == 422 && again.errorCode == "already_redeemed", "\(again)")
        for code in [shared, single, fresh[0], cliCode] {
            let redeemed = try await s.request("POST", "/v1/accounts/late/redeem", token: late, ["code": code.lowercased()])
            #expect(redeemed.status == 200, "\(code): \(redeemed)")
        }
        let stored = try await Self.everythingStored(client)
        for code in [shared, single, cliCode] + fresh {
            #expect(!stored.contains(Self.plainHash(code)), "the plain SHA-256 of \(code) is in Redis")
            #expect(!stored.contains(String(Self.plainHash(code).prefix(12))), "a prefix of the plain SHA-256 of \(code) is in Redis")
        }
        try await s.server.stop()

        // Another secret would read every code as invalid: the start is refused.
        let other = try TestProcess(CommandRunner.product("tollgate"), [
            "serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", directory.path, "--redis", redis.url,
            "--coupon-secret", "another-secret-of-enough-length",
        ], environment: [:])
        let ended = try await other.waitForExit(timeout: .seconds(60))
        #expect(ended != .exited(0), "\(other.outputSummary)")
        #expect(other.stderr.contains("coupon_secret_mismatch"), "\(other.outputSummary)")
        let short = try await CommandRunner.run(CommandRunner.product("tollgate"), [
            "coupon", "create", "--amount", "3", "--coupon-secret", "short",
        ], environment: ["TOLLGATE_REDIS_URL": redis.url])
        #expect(short.status != 0 && short.stderr.contains("at least 16 characters"), "\(short)")
    }
}
