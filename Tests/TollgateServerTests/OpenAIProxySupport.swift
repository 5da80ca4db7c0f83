import Foundation
import Testing
import TollgateTestSupport

/// The OpenAI proxy's end-to-end set-up: an upstream speaking OpenAI's wire format
/// (`Tests/OpenAIProxy/upstream_server.py`, a real process on a free port), `tollgate serve
/// --openai-upstream` in front of it on its own Redis, and the official `openai` SDK
/// (`Tests/OpenAIProxy/client.py`, from the venv `make test-deps` installs) as the caller.
struct ProxyFixture: Sendable {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let python = packageRoot.appendingPathComponent(".build-openai/bin/python")
    static let upstreamKey = "sk-upstream-test-7d1e"
    static let model = "m"
    /// Prices: 2 micro-credits an input token, 10 an output token (of model `m`).
    static let inputMicros: Int64 = 2
    static let outputMicros: Int64 = 10

    let server: E2EServer
    let upstream: UpstreamProcess
    let key: (id: String, secret: String)
    let account: String

    var baseURL: String { "http://127.0.0.1:\(server.port)/openai/v1" }

    /// Runs `body` with an upstream, a proxy (`arguments` added to `serve`'s), priced model `m`
    /// and an account `acme` with `credit` and one API key; everything stopped afterwards.
    static func with<T>(credit: String = "10", arguments: [String] = [], _ body: (ProxyFixture) async throws -> T) async throws -> T {
        try #require(FileManager.default.isExecutableFile(atPath: python.path),
                     "\(python.path) is missing: run `make test-deps` (installs the openai SDK from PyPI)")
        let upstream = try await UpstreamProcess.start()
        defer { upstream.process.signal(SIGKILL) }
        return try await E2EServer.with(
            arguments: ["--openai-upstream", "http://127.0.0.1:\(upstream.port)/v1"] + arguments,
            environment: ["TOLLGATE_OPENAI_UPSTREAM_KEY": upstreamKey]
        ) { server in
            try await server.price("tokens.input", "0.002", per: 1000, model: model)
            try await server.price("tokens.output", "0.01", per: 1000, model: model)
            try await server.account("acme", credit: credit)
            let key = try await server.key(for: "acme")
            return try await body(ProxyFixture(server: server, upstream: upstream, key: key, account: "acme"))
        }
    }

    /// A `tollgate serve` proxying to `upstream`, on a Redis and data folder of the caller's, so a
    /// test can kill or stop it and start another on the same state.
    static func serve(redis: RedisServer, dataDirectory: URL, upstream: UpstreamProcess, arguments: [String] = []) async throws -> E2EServer {
        E2EServer(redis: redis, server: try await ServerProcess.start(
            redis: redis, dataDirectory: dataDirectory, adminToken: E2ETokens.admin, serviceToken: E2ETokens.service,
            arguments: ["--log-level", "warning", "--redis-timeout", "10s"] + E2ETokens.couponSecretArguments
                + ["--openai-upstream", "http://127.0.0.1:\(upstream.port)/v1"] + arguments,
            environment: ["TOLLGATE_OPENAI_UPSTREAM_KEY": upstreamKey]))
    }

    /// Runs one scenario of the SDK client; returns what it printed (one JSON object).
    func sdk(_ arguments: [String], key: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) async throws -> JSONValue {
        let result = try await CommandRunner.run(
            Self.python, [Self.packageRoot.appendingPathComponent("Tests/OpenAIProxy/client.py").path,
                          "--base-url", baseURL, "--key", key ?? self.key.secret] + arguments)
        try #require(result.status == 0, "client.py \(arguments) failed:\n\(result.stdout)\n\(result.stderr.suffix(4000))",
                     sourceLocation: sourceLocation)
        let line = result.stdout.split(separator: "\n").last.map(String.init) ?? ""
        return try JSONValue(parsing: Array(line.utf8))
    }

    /// The account once no hold is open (a stream is settled just after its client has its
    /// end); fails after 60 s.
    func settledAccount(sourceLocation: SourceLocation = #_sourceLocation) async throws -> JSONValue {
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            let shown = try await server.show(account)
            if shown["held"] == "0" { return shown }
            guard ContinuousClock.now < deadline else {
                Issue.record("a hold is still open after 60 s: \(shown)", sourceLocation: sourceLocation)
                return shown
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Micro-credits the account's balance is below `start` (in credits, e.g. "10").
    func spentMicros(from start: String) async throws -> Int64 {
        let balance = try #require(try await settledAccount()["balance"]?.string)
        return Self.micros(start) - Self.micros(balance)
    }

    static func micros(_ credits: String) -> Int64 {
        let negative = credits.hasPrefix("-")
        let digits = negative ? String(credits.dropFirst()) : credits
        let parts = digits.split(separator: ".", omittingEmptySubsequences: false)
        let whole = Int64(parts[0]) ?? 0
        let fraction = parts.count > 1 ? Int64(parts[1].padding(toLength: 6, withPad: "0", startingAt: 0)) ?? 0 : 0
        return (negative ? -1 : 1) * (whole * 1_000_000 + fraction)
    }

    /// Net quantity of `meter@m` in the account's ledger (reports, settles, refunds).
    func ledgerQuantity(_ meter: String) async throws -> Int64 {
        let ledger = try await server.admin("GET", "/v1/accounts/\(account)/ledger?limit=1000")
        try #require(ledger.status == 200, "\(ledger)")
        let entries = ledger.value["entries"]?.array ?? []
        return entries.filter { $0["meter"]?.string == meter && $0["model"]?.string == Self.model }
            .reduce(0) { $0 + ($1["quantity"]?.int ?? 0) }
    }

    /// `GET /v1/audit`: the books balance.
    func expectCleanBooks(sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let audit = try await server.admin("GET", "/v1/audit")
        #expect(audit.value["clean"] == true, "\(audit)", sourceLocation: sourceLocation)
    }
}

/// `Tests/OpenAIProxy/upstream_server.py` running on a free port.
struct UpstreamProcess: Sendable {
    let process: TestProcess
    let port: Int

    static func start() async throws -> UpstreamProcess {
        let script = ProxyFixture.packageRoot.appendingPathComponent("Tests/OpenAIProxy/upstream_server.py")
        let process = try TestProcess(URL(fileURLWithPath: "/usr/bin/python3"), [script.path, "--port", "0"])
        try await process.waitForOutput(containing: "upstream listening on ", timeout: .seconds(60))
        let line = process.stdout.split(separator: "\n").first { $0.hasPrefix("upstream listening on ") } ?? ""
        let port = try #require(Int(line.dropFirst("upstream listening on ".count)), "\(process.outputSummary)")
        return UpstreamProcess(process: process, port: port)
    }

    /// Every request the upstream got, oldest first.
    func log() async throws -> [JSONValue] {
        let response = try await TestHTTPClient(port: port).send("GET", "/_log")
        return try JSONValue(parsing: response.body).array ?? []
    }

    /// The upstream's record of its last request once `done` says it is over; fails after 60 s.
    func lastRequest(until done: @Sendable (JSONValue) -> Bool, sourceLocation: SourceLocation = #_sourceLocation) async throws -> JSONValue {
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            if let last = try await log().last, done(last) { return last }
            guard ContinuousClock.now < deadline else {
                let last = try await log().last
                Issue.record("the upstream's last request did not end within 60 s: \(String(describing: last))", sourceLocation: sourceLocation)
                return last ?? .null
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}
