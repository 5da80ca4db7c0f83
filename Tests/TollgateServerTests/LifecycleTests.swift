import Foundation
import Testing
import TollgateCore
import TollgateTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// `tollgate serve` as a process: the embedded Redis, the data-folder lock, signals.
@Suite("serve: embedded Redis, data-folder lock, graceful shutdown")
struct LifecycleTests {
    @Test("with no --redis: starts its own redis-server, generates tokens, refuses a second serve on the same folder; SIGTERM stops both; data and tokens survive a restart",
          .enabled(if: !TestRedis.isCluster, "the embedded Redis is one server"))
    func embeddedDefault() async throws {
        let directory = ServerProcess.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let socket = directory.appendingPathComponent("redis.sock").path

        // (A generous Redis timeout: the tests start many servers at once on a small machine.)
        let timeout = ["--redis-timeout", "10s"]
        let first = try await ServerProcess.start(dataDirectory: directory, arguments: timeout)
        let admin = try #require(first.adminToken, "\(first.process.outputSummary)")
        let service = try #require(first.serviceToken)
        #expect(first.process.stdout.hasPrefix("tollgate listening on http://127.0.0.1:\(first.port) (redis: embedded, data in \(directory.path))\n"))
        #expect(admin.hasPrefix("tgadm_") && service.hasPrefix("tgsvc_"))
        // The generated tokens are kept in the folder, readable by the owner only.
        for (name, token) in [("admin", admin), ("service", service)] {
            let file = directory.appendingPathComponent("\(name).token").path
            #expect(try String(contentsOfFile: file, encoding: .utf8) == token + "\n")
            let mode = try #require(try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int)
            #expect(mode == 0o600)
        }
        // Its redis-server runs on a unix socket in the folder, with no TCP port, AOF on.
        let redisPIDs = processes(mentioning: socket)
        #expect(redisPIDs.count == 1, "\(redisPIDs)")
        #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent("appendonlydir").path))

        let http = first.http
        #expect(try await http.send("GET", "/readyz").value == ["status": "ready"])
        #expect(try await http.json("POST", "/v1/accounts", token: admin, body: ["id": "kept"]).status == 201)
        #expect(try await http.json("POST", "/v1/accounts/kept/credits", token: admin, body: ["amount": "4.25", "request_id": "t"]).status == 200)
        #expect(try await http.json("PUT", "/v1/prices/api_call", token: admin, body: ["price": "0.25"]).status == 200)
        #expect(try await http.json("POST", "/v1/authorize", token: service,
                                    body: ["account": "kept", "request_id": "a", "usage": [["meter": "api_call", "quantity": 1]]]).value["allowed"] == true)

        // A second serve on the same folder exits at once, saying the folder is in use.
        let second = try TestProcess(CommandRunner.product("tollgate"), ["serve", "--port", "0", "--data-dir", directory.path])
        let ended = try await second.waitForExit()
        #expect(ended == .exited(1), "\(second.outputSummary)")
        #expect(second.stderr.contains("in use"), "\(second.outputSummary)")
        #expect(!second.stdout.contains("listening"))
        // ... and the first one is unharmed.
        #expect(try await http.send("GET", "/readyz").status == 200)

        // SIGTERM: the server exits 0 and its redis-server is gone with it.
        #expect(try await first.stop() == .exited(0), "\(first.process.outputSummary)")
        #expect(processes(mentioning: socket).isEmpty)
        for pid in redisPIDs { #expect(kill(pid, 0) == -1 && errno == ESRCH, "redis-server \(pid) still runs") }
        #expect(!FileManager.default.fileExists(atPath: socket))

        // The folder is free again: the same tokens, the data replayed from the AOF.
        let restarted = try await ServerProcess.start(dataDirectory: directory, arguments: timeout)
        #expect(restarted.adminToken == admin && restarted.serviceToken == service)
        let account = try await restarted.http.json("GET", "/v1/accounts/kept", token: admin)
        #expect(account.status == 200 && account.value["balance"] == "4")
        #expect(try await restarted.stop() == .exited(0), "\(restarted.process.outputSummary)")
        #expect(processes(mentioning: socket).isEmpty)
    }

    @Test("SIGTERM while requests wait on Redis: they complete (200, applied), then the server exits 0",
          .enabled(if: !TestRedis.isCluster, "pauses the one Redis with CLIENT PAUSE"))
    func gracefulShutdown() async throws {
        // Redis is paused for writes, so authorize calls wait in the server; a long Redis
        // timeout keeps them waiting rather than failing.
        let s = try await E2EServer(arguments: ["--redis-timeout", "60s"])
        try await s.price("api_call", "0.5")
        try await s.account("acme", credit: "10")
        let control = s.redis.client(connections: 1)
        defer { control.close() }
        _ = try await control.send("CLIENT", "PAUSE", "60000", "WRITE")

        let count = 4
        let http = s.http
        let calls = (0..<count).map { n in
            Task {
                try await http.json("POST", "/v1/authorize", token: E2ETokens.service,
                                    body: ["account": "acme", "request_id": "in-flight-\(n)", "usage": [["meter": "api_call", "quantity": 1]]])
            }
        }
        do {
            // Every call is inside the server, waiting on Redis: the pipeline depth says so.
            let deadline = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < deadline {
                let metrics = try await http.send("GET", "/metrics").text
                let depth = metrics.split(separator: "\n").first { $0.hasPrefix("tollgate_redis_pipeline_depth ") }
                    .flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0
                if depth >= Double(count) { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            // SIGTERM, and wait until the server has stopped accepting connections.
            s.server.process.signal(SIGTERM)
            let closing = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < closing {
                if (try? await http.send("GET", "/healthz")) == nil { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(s.server.process.isRunning, "the server exited with requests in flight")
            _ = try await control.send("CLIENT", "UNPAUSE")

            for (n, call) in calls.enumerated() {
                let response = try await call.value
                #expect(response.status == 200, "call \(n): \(response)")
                #expect(response.value["allowed"] == true, "call \(n): \(response)")
            }
            #expect(try await s.server.process.waitForExit() == .exited(0), "\(s.server.process.outputSummary)")
        } catch {
            _ = try? await control.send("CLIENT", "UNPAUSE")
            try? await s.stop()
            throw error
        }

        // Every in-flight call was applied exactly once.
        let engine = try await Engine.start(redis: s.redis.client())
        #expect(try await engine.account(AccountID("acme")).balance == Money(parsing: "8"))
        let ledger = try await engine.ledger(AccountID("acme"))
        #expect(Set(ledger.entries.filter { $0.kind == .debit }.map(\.requestID)) == Set((0..<count).map { "in-flight-\($0)" }))
        engine.redis.close()
        s.redis.stop()
    }
}
