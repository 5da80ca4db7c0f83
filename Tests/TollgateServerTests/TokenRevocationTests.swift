import Foundation
import Testing
import TollgateTestSupport

/// Account tokens can be listed and revoked (HTTP and CLI); a revoked token is refused at once
/// by every server on the Redis, and its open streams end. `serve` prints a secret only when
/// it generated it.
@Suite("account tokens are revocable")
struct TokenRevocationTests {
    static func tokenID(_ token: String) -> String { AuthorizationMatrixTests.tokenID(token) }

    @Test("a revoked token is refused at once on every server, its open SSE stream ends, and the rest keep working")
    func revokedEverywhere() async throws {
        try await E2EServer.with { s in
            try await s.account("rev", credit: "5")
            try await s.account("bystander", credit: "5")
            let created = try await s.admin("POST", "/v1/accounts/rev/tokens")
            try #require(created.status == 201, "\(created)")
            let token = try #require(created.value["token"]?.string)
            let tokenID = try #require(created.value["token_id"]?.string)
            let kept = try await s.accountToken(for: "rev")
            let bystander = try await s.accountToken(for: "bystander")

            // A second server on the same Redis, which has seen the token work (had it cached
            // the lookup, it would keep honouring it).
            let second = try await ServerProcess.start(
                redisArguments: s.testRedis.serveArguments, adminToken: E2ETokens.admin, serviceToken: E2ETokens.service,
                arguments: ["--log-level", "warning", "--redis-timeout", "10s"] + E2ETokens.couponSecretArguments)
            #expect(try await second.http.json("GET", "/v1/accounts/rev", token: token, body: nil).status == 200)
            #expect(try await s.request("GET", "/v1/accounts/rev", token: token).status == 200)

            let listed = try await s.admin("GET", "/v1/accounts/rev/tokens").value.array?.compactMap { $0["token_id"]?.string } ?? []
            #expect(listed.count == 2 && listed.contains(tokenID), "\(listed)")
            #expect(!String(decoding: try await s.admin("GET", "/v1/accounts/rev/tokens").body, as: UTF8.self).contains(token))

            let stream = try SSEStreams(port: s.port, path: "/v1/accounts/rev/events", token: token)
            defer { stream.close() }
            try await stream.waitUntil { $0.contains { $0.event == "snapshot" } }

            // Another account's path cannot revoke it, nor can another account's token.
            let elsewhere = try await s.admin("DELETE", "/v1/accounts/bystander/tokens/\(tokenID)")
            #expect(elsewhere.status == 404 && elsewhere.errorCode == "token_not_found", "\(elsewhere)")
            #expect(try await s.request("DELETE", "/v1/accounts/rev/tokens/\(tokenID)", token: bystander).status == 403)
            #expect(try await s.request("GET", "/v1/accounts/rev", token: token).status == 200)

            let revoked = try await s.admin("DELETE", "/v1/accounts/rev/tokens/\(tokenID)")
            #expect(revoked.status == 200 && revoked.value["status"] == "revoked", "\(revoked)")
            for server in [s.http, second.http] {
                let refused = try await server.json("GET", "/v1/accounts/rev", token: token, body: nil)
                #expect(refused.status == 401 && refused.value["error"]?["code"]?.string == "unauthorized", "\(refused)")
            }
            #expect(try await s.request("GET", "/v1/accounts/rev/ledger", token: token).status == 401)
            let again = try await s.admin("DELETE", "/v1/accounts/rev/tokens/\(tokenID)")
            #expect(again.status == 404 && again.errorCode == "token_not_found", "\(again)")
            let malformed = try await s.admin("DELETE", "/v1/accounts/rev/tokens/tok_zz")
            #expect(malformed.status == 400, "\(malformed)")

            // The open stream ends (a hang bound only: it is checked every second).
            let deadline = ContinuousClock.now + .seconds(30)
            while !stream.isClosed(), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
            #expect(stream.isClosed(), "the stream of a revoked token stays open")

            // The other tokens still work, and a new stream with the revoked token is refused.
            #expect(try await s.request("GET", "/v1/accounts/rev", token: kept).status == 200)
            #expect(try await s.request("GET", "/v1/accounts/bystander", token: bystander).status == 200)
            let refusedStream = try SSEStreams(port: s.port, path: "/v1/accounts/rev/events", token: token)
            defer { refusedStream.close() }
            while refusedStream.status() == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            #expect(refusedStream.status() == 401)

            // A token made before tokens were indexed (only its key, as older servers wrote it).
            let legacy = "tga_legacy0000000000000000000000000000000000"
            let redis = s.testRedis.client(connections: 1)
            defer { redis.close() }
            _ = try await redis.send("SET", "tg:acctok:" + String(Self.tokenID(legacy).dropFirst(4)), "rev")
            #expect(try await s.request("GET", "/v1/accounts/rev", token: legacy).status == 200)

            // Revoking all: the last one goes too, and the unindexed one; the account itself is untouched.
            let all = try await s.admin("DELETE", "/v1/accounts/rev/tokens")
            #expect(all.status == 200 && all.value["revoked"] == 2, "\(all)")
            #expect(try await s.request("GET", "/v1/accounts/rev", token: legacy).status == 401)
            #expect(try await s.request("GET", "/v1/accounts/rev", token: kept).status == 401)
            #expect(try await s.show("rev")["balance"] == "5")
            #expect(try await s.admin("GET", "/v1/accounts/rev/tokens").value == [])
            #expect(try await s.admin("GET", "/v1/accounts/nobody/tokens").status == 404)
            try await second.stop()
        }
    }

    @Test("the CLI creates, lists and revokes tokens, also by the token's value; a server refuses it at once")
    func cli() async throws {
        try await E2EServer.with { s in
            try await s.account("cli-tok")
            let tollgate = CommandRunner.product("tollgate")
            let redis = s.testRedis.serveArguments
            let made = try await CommandRunner.run(tollgate, ["token", "create", "cli-tok", "--json"] + redis)
            try #require(made.status == 0, "\(made.stderr)")
            let created = try JSONValue(parsing: Array(made.stdout.utf8))
            let token = try #require(created["token"]?.string)
            let tokenID = try #require(created["token_id"]?.string)
            #expect(try await s.request("GET", "/v1/accounts/cli-tok", token: token).status == 200)

            let list = try await CommandRunner.run(tollgate, ["token", "list", "cli-tok"] + redis)
            #expect(list.status == 0 && list.stdout.contains(tokenID) && !list.stdout.contains(token), "\(list.stdout)")

            let neither = try await CommandRunner.run(tollgate, ["token", "revoke", "cli-tok"] + redis)
            #expect(neither.status == 2 && neither.stderr.contains("exactly one"), "\(neither.stderr)")

            let revoked = try await CommandRunner.run(tollgate, ["token", "revoke", "cli-tok", "--token", token] + redis)
            #expect(revoked.status == 0 && revoked.stdout.contains(tokenID), "\(revoked.stdout) \(revoked.stderr)")
            #expect(try await s.request("GET", "/v1/accounts/cli-tok", token: token).status == 401)

            let twice = try await CommandRunner.run(tollgate, ["token", "revoke", "cli-tok", tokenID] + redis)
            #expect(twice.status == 1 && twice.stderr.contains("token_not_found"), "\(twice.stderr)")
        }
    }

    @Test("serve prints the admin and service tokens only on the start that generated them",
          .enabled(if: !TestRedis.isCluster, "a single Redis of its own"))
    func secretsPrintedOnce() async throws {
        let redis = try await RedisServer()
        defer { redis.stop() }
        let directory = ServerProcess.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let first = try await ServerProcess.start(redis: redis, dataDirectory: directory, arguments: ["--log-level", "warning"])
        let admin = try #require(first.adminToken)
        let service = try #require(first.serviceToken)
        #expect(first.output.contains("admin token: \(admin)") && first.output.contains("service token: \(service)"))
        try await first.stop()

        let second = try await ServerProcess.start(redis: redis, dataDirectory: directory, arguments: ["--log-level", "warning", "--demo"])
        #expect(second.adminToken == admin && second.serviceToken == service, "the tokens are kept in the data folder")
        #expect(!second.output.contains(admin) && !second.output.contains(service), "\(second.output)")
        #expect(second.output.contains("admin token kept in \(directory.appendingPathComponent("admin.token").path)"))
        // Still usable: the admin token read from its file works.
        #expect(try await second.http.json("GET", "/v1/accounts", token: admin, body: nil).status == 200)
        try await second.stop()
    }

    @Test("a stream whose token cannot be checked (Redis down) ends after the grace, so a revocation meanwhile is not missed",
          .enabled(if: !TestRedis.isCluster, "stops the one Redis"))
    func streamEndsWhenTokenCannotBeChecked() async throws {
        try await E2EServer.with(persistentRedis: true) { s in
            try await s.account("blind", credit: "1")
            let token = try await s.accountToken(for: "blind")
            let stream = try SSEStreams(port: s.port, path: "/v1/accounts/blind/events", token: token)
            defer { stream.close() }
            try await stream.waitUntil { $0.contains { $0.event == "snapshot" } }
            s.redis.stop()
            // The grace is 10 s; the bound only catches a stream that never ends.
            let deadline = ContinuousClock.now + .seconds(60)
            while !stream.isClosed(), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
            #expect(stream.isClosed(), "the stream went on while its token could not be checked")
            try await s.redis.start()
        }
    }
}
