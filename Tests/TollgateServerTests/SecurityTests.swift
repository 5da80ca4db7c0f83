import Foundation
import Testing
import TollgateRedis
import TollgateServer
import TollgateTestSupport

/// Durability settings checked at start; Redis AUTH with an ACL user from the URL, end to end.
@Suite("reliability: durability check, Redis ACL user", .enabled(if: !TestRedis.isCluster, "single Redis servers of their own"))
struct SecurityTests {
    @Test("the durability check warns when Redis cannot deliver the mode")
    func durabilityCheck() async throws {
        let plain = try await RedisServer()  // appendonly no
        let client = plain.client()
        #expect(await Durability.normal.problems(of: client).count == 1)
        #expect(await Durability.strict.problems(of: client).count == 2)
        client.close()
        plain.stop()
        let strict = try await RedisServer(persistent: true, extraArguments: ["--appendfsync", "always"])
        let good = strict.client()
        #expect(await Durability.strict.problems(of: good).isEmpty)
        #expect(await Durability.normal.problems(of: good).isEmpty)
        good.close()
        strict.stop()
    }

    @Test("tollgate serve on a Redis with an ACL user and password from the URL; a wrong password is refused and never printed")
    func aclUser() async throws {
        let redis = try await RedisServer(tcp: true, extraArguments: ["--requirepass", "root-pw-71c3"])
        let port = try #require(redis.port)
        let admin = RedisClient(configuration: RedisConfiguration(
            address: try RedisAddress(parsing: "redis://default:root-pw-71c3@127.0.0.1:\(port)"), connectionCount: 1))
        _ = try await admin.send("ACL", "SETUSER", "tollgate", "on", ">tg-pw-5e2a", "~*", "&*", "+@all")
        admin.close()

        let server = try await ServerProcess.start(
            adminToken: E2ETokens.admin, serviceToken: E2ETokens.service,
            arguments: ["--redis", "redis://tollgate:tg-pw-5e2a@127.0.0.1:\(port)", "--log-level", "warning", "--redis-timeout", "10s"])
        let s = E2EServer(redis: redis, server: server)
        try await s.price("api_call", "0.01")
        try await s.account("acl", credit: "1")
        #expect(try await s.authorize(["account": "acl", "request_id": "a1", "usage": [["meter": "api_call", "quantity": 1]]])["allowed"] == true)
        #expect(!server.output.contains("tg-pw-5e2a"))
        try await server.stop()

        let refused = try await CommandRunner.run(CommandRunner.product("tollgate"),
            ["serve", "--redis", "redis://tollgate:wrong-pw-0000@127.0.0.1:\(port)", "--port", "0", "--data-dir",
             FileManager.default.temporaryDirectory.appendingPathComponent("tg-acl-\(UUID().uuidString.prefix(6))").path,
             "--admin-token", "a", "--service-token", "s"])
        #expect(refused.status != 0)
        #expect(!refused.stdout.contains("wrong-pw-0000") && !refused.stderr.contains("wrong-pw-0000"), "\(refused.stderr)")
        redis.stop()
    }
}

@Suite("token guessing is rate-limited")
struct TokenGuessingTests {
    @Test("100 unknown bearer tokens from one address in a minute: then 429 for account tokens, the admin token still passes")
    func guessing() async throws {
        try await E2EServer.with { s in
            try await s.account("g", credit: "1")
            let token = try await s.accountToken(for: "g")
            for n in 0..<100 {
                let response = try await s.request("GET", "/v1/accounts/g", token: "tga_guess_\(n)")
                #expect(response.status == 401)
            }
            let blocked = try await s.request("GET", "/v1/accounts/g", token: "tga_guess_x")
            #expect(blocked.status == 429 && blocked.errorCode == "too_many_attempts", "\(blocked)")
            #expect(try await s.request("GET", "/v1/accounts/g", token: token).status == 429)
            #expect(try await s.admin("GET", "/v1/accounts/g").status == 200)
            // A gateway's unknown API keys are decisions, not guesses of bearer tokens.
            let key = try await s.check([("X-Api-Key", "tgk_unknown"), ("X-Request-Id", "g1")])
            #expect(key.status == 401 && key.header("X-Tollgate-Reason") == "unknown_key")
        }
    }
}
