import Testing
import TollgateRedis
import TollgateTestSupport

@Suite("Reconnecting after a server restart")
struct ReconnectTests {
    enum Transport: String, CaseIterable, Sendable { case unixSocket, tcp }

    static func server(_ transport: Transport) async throws -> (RedisServer, RedisAddress) {
        let server = try await RedisServer(tcp: transport == .tcp, persistent: true)
        let address = transport == .tcp ? server.tcpAddress : server.address
        return (server, try #require(address))
    }

    /// Pings until the client answers again; every failure on the way must be a connectivity error.
    static func waitUntilReachable(_ client: RedisClient, within limit: Duration = .seconds(5)) async -> (ok: Bool, failures: [RedisError]) {
        var failures: [RedisError] = []
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            do {
                try await client.ping()
                return (true, failures)
            } catch {
                failures.append(error)
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
        return (false, failures)
    }

    static func value(worker: Int, iteration: Int) -> Int64 { Int64(worker * 1_000_000 + iteration) }

    @Test("the client recovers by itself and the data survives", arguments: Transport.allCases)
    func recoversAfterRestart(_ transport: Transport) async throws {
        let (server, address) = try await Self.server(transport)
        defer { server.stop() }
        let client = makeClient(address, connections: 2)
        defer { client.close() }
        for index in 0..<100 {
            try await client.send("SET", "survivor:\(index)", "value-\(index)")
        }
        #expect(try await client.send("INCRBY", "counter", "41") == .integer(41))

        try await server.restart()

        let (ok, failures) = await Self.waitUntilReachable(client)
        #expect(ok, "the client did not recover; failures: \(failures)")
        for failure in failures {
            #expect(failure.isConnectivity, "\(failure)")
        }
        // Both pooled connections were dropped by the restart and are remade.
        for index in 0..<100 {
            #expect(try await client.send("GET", "survivor:\(index)") == .bulkString(utf8("value-\(index)")))
        }
        #expect(try await client.send("INCR", "counter") == .integer(42))
        #expect(client.outstandingCommands == 0)
    }

    @Test("commands in flight when the server stops get connectivity errors, never wrong replies", arguments: Transport.allCases)
    func commandsInFlightDuringStop(_ transport: Transport) async throws {
        let (server, address) = try await Self.server(transport)
        defer { server.stop() }
        // A connect timeout well above the "fails at once" bound below, so a hang would show.
        let client = makeClient(address, connections: 2, connectTimeout: .seconds(3), commandTimeout: .seconds(1))
        defer { client.close() }
        try await client.ping()
        let stopped = SharedCounter()
        let succeeded = SharedCounter()

        struct WorkerReport: Sendable {
            var worker: Int?
            var wrongReplies: [String] = []
            var otherErrors: [RedisError] = []
            var connectivityErrors = 0
            var successes = 0
            var written: [Int] = []
        }

        let reports = await withTaskGroup(of: WorkerReport.self) { group in
            for worker in 0..<16 {
                group.addTask {
                    var report = WorkerReport(worker: worker)
                    var errorsAfterStop = 0
                    // A hang bound, not a speed claim: a loaded machine can be slow to fail.
                    let deadline = ContinuousClock.now + .seconds(30)
                    var iteration = 0
                    while errorsAfterStop < 3 && ContinuousClock.now < deadline {
                        iteration += 1
                        // Writes answer a number unique to the caller, so a reply handed to the wrong
                        // caller cannot go unnoticed.
                        let key = "w\(worker):\(iteration)"
                        let value = Self.value(worker: worker, iteration: iteration)
                        let wasStopped = stopped.value > 0
                        do throws(RedisError) {
                            let incr = try await client.send("INCRBY", key, String(value))
                            if incr != .integer(value) { report.wrongReplies.append("INCRBY \(key) \(value) -> \(incr)") }
                            report.written.append(iteration)
                            let get = try await client.send("GET", key)
                            if get != .bulkString(utf8(String(value))) { report.wrongReplies.append("GET \(key) -> \(get)") }
                            report.successes += 1
                            succeeded.increment()
                        } catch {
                            if error.isConnectivity { report.connectivityErrors += 1 } else { report.otherErrors.append(error) }
                            if wasStopped { errorsAfterStop += 1 }
                        }
                    }
                    return report
                }
            }
            group.addTask {
                // Stop once commands are flowing, not after a fixed time: a loaded machine may not
                // have run a single one in the first 150 ms. The deadline only bounds a hang.
                let deadline = ContinuousClock.now + .seconds(20)
                while succeeded.value < 32 && ContinuousClock.now < deadline {
                    try? await Task.sleep(for: .milliseconds(10))
                }
                server.stop()
                stopped.increment()
                return WorkerReport()
            }
            var all: [WorkerReport] = []
            for await report in group { all.append(report) }
            return all
        }
        #expect(stopped.value == 1)
        #expect(reports.compactMap { $0.worker }.sorted() == Array(0..<16))
        let wrong = reports.flatMap(\.wrongReplies)
        let others = reports.flatMap(\.otherErrors)
        #expect(wrong.isEmpty, "wrong replies: \(wrong.prefix(10))")
        #expect(others.isEmpty, "non-connectivity errors: \(others.prefix(10))")
        #expect(reports.map(\.successes).reduce(0, +) > 0, "no command succeeded before the stop")
        #expect(reports.map(\.connectivityErrors).reduce(0, +) >= 16 * 3, "the stop produced too few errors")
        #expect(client.outstandingCommands == 0)

        // While the server is down, commands fail at once rather than hang.
        for attempt in 0..<5 {
            let (result, elapsed) = await timed { () async throws(RedisError) in try await client.send("GET", "w0:1") }
            switch result {
            case .success(let reply): Issue.record("attempt \(attempt): the stopped server answered \(reply)")
            case .failure(let error): #expect(error.isConnectivity, "\(error)")
            }
            #expect(elapsed < .seconds(20), "attempt \(attempt) took \(elapsed): it hung")  // a hang check, not a speed claim
        }

        // Back up: the client recovers, and every INCRBY that was acknowledged survived (AOF).
        try await server.start()
        let (ok, failures) = await Self.waitUntilReachable(client)
        #expect(ok, "the client did not recover; failures: \(failures)")
        for report in reports {
            guard let worker = report.worker, !report.written.isEmpty else { continue }
            let keys = report.written.map { "w\(worker):\($0)" }
            var mget = RedisCommand("MGET")
            for key in keys { mget.append(key) }
            let values = try await client.send(mget)
            let expected = RESPValue.array(report.written.map { .bulkString(utf8(String(Self.value(worker: worker, iteration: $0)))) })
            #expect(values == expected)
        }
    }
}
