import Foundation
import Testing
import TollgateTestSupport

/// An independent fuzzer beside our own (HTTPFuzzTests): schemathesis, from PyPI (`make deps`
/// installs it into `.build-schemathesis`), generates requests from `openapi.json` against a
/// live server, once with the admin token and once with the service token, each bounded in
/// time, under the same rules: no 5xx (Redis stays up, so not even a 503), and no change in
/// Redis on a 4xx (`Tests/Fuzz/schemathesis_hooks.py`). Afterwards the server is up and the
/// books are clean.
@Suite("schemathesis against openapi.json", .enabled(if: !TestRedis.isCluster, "reads DEBUG DIGEST of the one Redis"))
struct SchemathesisTests {
    static let executable = BrowserTests.packageRoot.appendingPathComponent(".build-schemathesis/bin/schemathesis")

    @Test("no 5xx, no state change on a 4xx, the server survives and the books are clean")
    func fuzz() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.executable.path),
                     "\(Self.executable.path) is missing: run `make deps` (it installs schemathesis from PyPI)")
        try await E2EServer.with(redisArguments: ["--enable-debug-command", "local"]) { s in
            try await s.price("api_call", "0.01")
            try await s.account("acme", credit: "10")
            let hooks = BrowserTests.packageRoot.appendingPathComponent("Tests/Fuzz")
            let environment = [
                "SCHEMATHESIS_HOOKS": "schemathesis_hooks", "PYTHONPATH": hooks.path,
                "TOLLGATE_FUZZ_REDIS_SOCKET": s.redis.socketPath,
            ]
            for token in [E2ETokens.admin, E2ETokens.service] {
                let result = try await CommandRunner.run(Self.executable, [
                    "run", "http://127.0.0.1:\(s.port)/openapi.json", "--header", "Authorization: Bearer \(token)",
                    "--checks", "not_a_server_error,no_state_change_on_client_error",
                    // Streams do not end.
                    "--exclude-path-regex", "(/events|/ws)$",
                    "--max-examples", "10", "--max-time", "40", "--request-timeout", "10", "--seed", "1", "--no-color",
                ], environment: environment)
                let summary = result.stdout.split(separator: "\n").filter { $0.contains("generated") || $0.contains("passed") || $0.contains("failed") }
                print("FIGURE schemathesis (\(token == E2ETokens.admin ? "admin" : "service") token): \(summary.suffix(2).joined(separator: "; "))")
                #expect(result.status == 0, "schemathesis found failures:\n\(result.stdout.suffix(8000))\n\(result.stderr.suffix(2000))")
                #expect(result.stdout.contains(" passed"), "\(result.stdout.suffix(2000))")
            }
            #expect(try await s.http.send("GET", "/healthz").status == 200, "the server did not survive")
            let audit = try await s.admin("GET", "/v1/audit")
            #expect(audit.value["clean"] == true, "\(audit)")
        }
    }
}
