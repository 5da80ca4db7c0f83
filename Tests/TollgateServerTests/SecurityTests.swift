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

    @Test("150 parallel guesses from one address: at most 100 are looked up, the rest get 429")
    func parallelGuesses() async throws {
        try await E2EServer.with { s in
            try await s.account("pg", credit: "1")
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for n in 0..<150 {
                    group.addTask { try await s.request("GET", "/v1/accounts/pg", token: "tga_parallel_guess_\(n)").status }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            let unauthorized = statuses.filter { $0 == 401 }.count
            let refused = statuses.filter { $0 == 429 }.count
            #expect(unauthorized <= 100 && unauthorized + refused == 150, "401: \(unauthorized), 429: \(refused), others: \(statuses.filter { $0 != 401 && $0 != 429 })")
            #expect(try await s.request("GET", "/v1/accounts/pg", token: "tga_after").status == 429)
        }
    }

    @Test("wrong service tokens on /v1/check count as guesses; the right one still passes")
    func checkServiceTokenGuesses() async throws {
        try await E2EServer.with { s in
            try await s.price("api_call", "0.01")
            try await s.account("cg", credit: "1")
            let key = try await s.key(for: "cg")
            let token = try await s.accountToken(for: "cg")
            // Through every spelling of the path that reaches the check route.
            let paths = ["/v1/check", "/v1//check", "/v1/check/"]
            for n in 0..<100 {
                let response = try await s.http.send("GET", paths[n % paths.count], headers: [
                    ("X-Api-Key", key.secret), ("X-Request-Id", "cg-\(n)"), ("Tollgate-Service-Token", "tgsvc_guess_\(n)"),
                ])
                #expect(response.status == 401 && response.header("X-Tollgate-Reason") == "invalid_service_token", "\(paths[n % paths.count])")
            }
            let blocked = try await s.check([("X-Api-Key", key.secret), ("X-Request-Id", "cg-x")], serviceToken: "tgsvc_guess_x")
            #expect(blocked.status == 429, "\(blocked)")
            #expect(try await s.request("GET", "/v1/accounts/cg", token: token).status == 429)
            let gateway = try await s.check([("X-Api-Key", key.secret), ("X-Request-Id", "cg-ok")])
            #expect(gateway.status == 200, "\(gateway)")
        }
    }

    @Test("a client at its guessing limit cannot open a WebSocket stream even with a valid token")
    func webSocketGuesses() async throws {
        try await E2EServer.with { s in
            try await s.account("wg", credit: "1")
            let token = try await s.accountToken(for: "wg")
            let upgrade = { (bearer: String) in try await s.http.webSocketUpgrade("/v1/accounts/wg/ws", bearer: bearer) }
            // The valid token upgrades (101) before any guess.
            #expect(try await upgrade(token).status == 101)
            // Guesses through the upgrade are refused (400, no upgrade) and count like any other.
            for n in 0..<100 {
                let response = try await upgrade("tga_ws_guess_\(n)")
                #expect(response.status == 400, "\(response)")
            }
            #expect(try await s.request("GET", "/v1/accounts/wg", token: token).status == 429)
            // At the limit, even the valid token is not looked up: no upgrade.
            let refused = try await upgrade(token)
            #expect(refused.status == 400, "\(refused)")
            #expect(try await s.admin("GET", "/v1/accounts/wg").status == 200)
        }
    }

    @Test("WebSocket upgrades that fail because Redis is down are no guesses: once Redis is back the valid token upgrades",
          .enabled(if: !TestRedis.isCluster, "stops the one Redis"))
    func webSocketRedisDownIsNoGuess() async throws {
        try await E2EServer.with(persistentRedis: true) { s in
            try await s.account("wr", credit: "1")
            let token = try await s.accountToken(for: "wr")
            let upgrade = { try await s.http.webSocketUpgrade("/v1/accounts/wr/ws", bearer: token) }
            s.redis.stop()
            for _ in 0..<110 { #expect(try await upgrade().status == 400) }
            try await s.redis.start()
            // Until the server has reconnected (the bound only catches a hang).
            let deadline = ContinuousClock.now + .seconds(30)
            var status = 0
            while ContinuousClock.now < deadline {
                status = try await upgrade().status
                if status == 101 { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(status == 101, "the valid token was refused after Redis came back")
        }
    }
}
