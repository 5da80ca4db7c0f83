import Foundation
import Testing
import TollgateTestSupport

/// `--request-timeout` and `--idle-timeout` against a real `tollgate serve`, over raw sockets:
/// a client that sends its request slowly, or nothing, loses its connection; requests that
/// arrive in time and the streams that follow them do not. The sockets' read timeout
/// (`hangBound`) only catches a server that never answers or closes; no test measures speed.
@Suite("Request timeouts", .serialized)
struct RequestTimeoutTests {
    /// Seconds a read waits before the test calls the server hung.
    static let hangBound = 15

    /// Connects and writes `bytes`; the connection's reads time out after `timeout` seconds.
    static func open(_ port: Int, sending bytes: [UInt8] = [], timeout: Int = hangBound) async throws -> TestHTTPConnection {
        try await TestHTTPConnection.onThread {
            let connection = try TestHTTPConnection(host: "127.0.0.1", port: port, timeout: timeout)
            if !bytes.isEmpty { try connection.write(bytes) }
            return connection
        }
    }

    static func send(_ connection: TestHTTPConnection, _ bytes: [UInt8]) async throws {
        try await TestHTTPConnection.onThread { try connection.write(bytes) }
    }

    static func response(_ connection: TestHTTPConnection) async throws -> TestHTTPResponse {
        try await TestHTTPConnection.onThread { try connection.readResponse() }
    }

    /// True when the server closes the connection with nothing (more) to read.
    static func closed(_ connection: TestHTTPConnection) async throws -> Bool {
        try await TestHTTPConnection.onThread { try connection.waitForClose() }
    }

    /// A keep-alive `GET` (no `Connection: close`).
    static func get(_ path: String, token: String? = nil) -> [UInt8] {
        TestHTTPClient.request("GET", path, host: "127.0.0.1", headers: token.map { [("Authorization", "Bearer \($0)")] } ?? [],
                               body: nil, close: false)
    }

    /// The server logged nothing at error level (it runs at `warning`).
    static func expectNoErrorsLogged(_ server: E2EServer, sourceLocation: SourceLocation = #_sourceLocation) {
        let errors = server.server.output.split(separator: "\n").filter { $0.contains(" error ") || $0.contains(" critical ") }
        #expect(errors.isEmpty, "\(errors.prefix(5))", sourceLocation: sourceLocation)
    }

    /// The `tollgate_request_timeouts_total` counter from `/metrics`.
    static func timeoutsCounted(_ server: E2EServer) async throws -> Int {
        let metrics = try await server.http.send("GET", "/metrics")
        let line = metrics.text.split(separator: "\n").first { $0.hasPrefix("tollgate_request_timeouts_total ") }
        return line.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
    }

    @Test("a request head that stalls half way is answered 408 request_timeout, then the connection closes")
    func stalledHead() async throws {
        try await E2EServer.with(arguments: ["--request-timeout", "1s"]) { s in
            let connection = try await Self.open(s.port, sending: Array("POST /v1/accounts HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthor".utf8))
            defer { connection.close() }
            let answer = try await Self.response(connection)
            #expect(answer.status == 408, "\(answer)")
            #expect(answer.errorCode == "request_timeout", "\(answer)")
            #expect(answer.value["error"]?["message"]?.string == "the request did not arrive within 1s", "\(answer)")
            #expect(answer.header("Connection")?.lowercased() == "close" && answer.header("Content-Type") == "application/json")
            #expect(try await Self.closed(connection))
            #expect(try await Self.timeoutsCounted(s) == 1)
            Self.expectNoErrorsLogged(s)
        }
    }

    @Test("a body that stops short of its Content-Length is answered 408 and closed, and the part that came is not acted on")
    func stalledBody() async throws {
        try await E2EServer.with(arguments: ["--request-timeout", "1s"]) { s in
            // Ten bytes of a hundred, and those ten are a whole JSON object: an account "t".
            let head = "POST /v1/accounts HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(E2ETokens.admin)\r\n"
                + "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
            let connection = try await Self.open(s.port, sending: Array((head + #"{"id":"t"}"#).utf8))
            defer { connection.close() }
            let answer = try await Self.response(connection)
            #expect(answer.status == 408 && answer.errorCode == "request_timeout", "\(answer)")
            #expect(try await Self.closed(connection))
            let account = try await s.admin("GET", "/v1/accounts/t")
            #expect(account.status == 404, "\(account)")
            Self.expectNoErrorsLogged(s)
        }
    }

    @Test("a connection that sends nothing is closed without an answer")
    func silentConnection() async throws {
        try await E2EServer.with(arguments: ["--request-timeout", "1s"]) { s in
            let connection = try await Self.open(s.port)
            defer { connection.close() }
            #expect(try await Self.closed(connection))
            #expect(try await Self.timeoutsCounted(s) == 1)
            Self.expectNoErrorsLogged(s)
        }
    }

    @Test("requests that arrive in time are answered, on a keep-alive connection too after a pause longer than the limit")
    func requestsInTime() async throws {
        try await E2EServer.with(arguments: ["--request-timeout", "1s"]) { s in
            let connection = try await Self.open(s.port, sending: Self.get("/healthz"))
            defer { connection.close() }
            let first = try await Self.response(connection)
            #expect(first.status == 200, "\(first)")
            // Idle between requests, longer than --request-timeout: --idle-timeout (75 s) applies.
            try await Task.sleep(for: .milliseconds(2500))
            try await Self.send(connection, Self.get("/v1/accounts/none", token: E2ETokens.admin))
            let second = try await Self.response(connection)
            #expect(second.status == 404 && second.errorCode == "account_not_found", "\(second)")
            // A request with a body, sent at once, and another pause.
            try await Task.sleep(for: .milliseconds(1500))
            let body = Array(#"{"id":"kept"}"#.utf8)
            try await Self.send(connection, TestHTTPClient.request(
                "POST", "/v1/accounts", host: "127.0.0.1",
                headers: [("Authorization", "Bearer \(E2ETokens.admin)"), ("Content-Type", "application/json")], body: body, close: false))
            let created = try await Self.response(connection)
            #expect(created.status == 201, "\(created)")
            #expect(try await Self.timeoutsCounted(s) == 0)
            Self.expectNoErrorsLogged(s)
        }
    }

    @Test("a keep-alive connection idle past --idle-timeout is closed; a slow request after a pause still gets its own deadline")
    func idleConnection() async throws {
        try await E2EServer.with(arguments: ["--request-timeout", "1s", "--idle-timeout", "1s"]) { s in
            let idle = try await Self.open(s.port, sending: Self.get("/healthz"))
            defer { idle.close() }
            #expect(try await Self.response(idle).status == 200)
            #expect(try await Self.closed(idle))

            // --idle-timeout long, --request-timeout short: the half head sent after a pause
            // is timed from its first byte.
            try await E2EServer.with(arguments: ["--request-timeout", "1s", "--idle-timeout", "60s"]) { t in
                let connection = try await Self.open(t.port, sending: Self.get("/healthz"))
                defer { connection.close() }
                #expect(try await Self.response(connection).status == 200)
                try await Task.sleep(for: .milliseconds(1500))
                try await Self.send(connection, Array("GET /healthz HTTP/1.1\r\nHo".utf8))
                let answer = try await Self.response(connection)
                #expect(answer.status == 408 && answer.errorCode == "request_timeout", "\(answer)")
                #expect(try await Self.closed(connection))
            }
        }
    }

    @Test("an SSE stream keeps delivering past the limit")
    func eventStreamOutlivesLimit() async throws {
        try await E2EServer.with(arguments: ["--request-timeout", "1s"]) { s in
            try await s.account("sse", credit: "5")
            let streams = try SSEStreams(port: s.port, path: "/v1/accounts/sse/events", token: E2ETokens.admin)
            defer { streams.close() }
            try await streams.waitUntil(timeout: .seconds(Self.hangBound)) { $0.first?.event == "snapshot" }
            try await Task.sleep(for: .milliseconds(2500))
            let credited = try await s.admin("POST", "/v1/accounts/sse/credits", ["amount": "2", "request_id": "sse-late"])
            #expect(credited.status == 200, "\(credited)")
            try await streams.waitUntil(timeout: .seconds(Self.hangBound)) { $0.contains { $0.event == "change" } }
            let change = try #require(streams.events().first { $0.event == "change" })
            #expect(change["balance"] == "7", "\(change.data)")
            #expect(!streams.isClosed() && streams.status() == 200)
            #expect(try await Self.timeoutsCounted(s) == 0)
            Self.expectNoErrorsLogged(s)
        }
    }

    @Test("a WebSocket stream keeps delivering past the limit")
    func webSocketOutlivesLimit() async throws {
        try await E2EServer.with(arguments: ["--request-timeout", "1s"]) { s in
            try await s.account("wsl", credit: "5")
            let received = try await WebSocketProbe.collect(port: s.port, path: "/v1/accounts/wsl/ws", token: E2ETokens.admin, count: 2) {
                try await Task.sleep(for: .milliseconds(2500))
                let credited = try await s.admin("POST", "/v1/accounts/wsl/credits", ["amount": "2", "request_id": "ws-late"])
                #expect(credited.status == 200, "\(credited)")
            }
            #expect(received.first?["type"] == "snapshot", "\(received)")
            #expect(received.last?["type"] == "change" && received.last?["balance"] == "7", "\(received)")
            #expect(try await Self.timeoutsCounted(s) == 0)
            Self.expectNoErrorsLogged(s)
        }
    }

    @Test("fifty stalled clients, more than --max-connections, do not keep a normal request from being answered")
    func stalledClientsDoNotLockOut() async throws {
        // 20 connections at once: without the limit the stalled clients would hold every one
        // of them and the normal request would wait in the listen backlog for ever.
        try await E2EServer.with(arguments: ["--request-timeout", "1s", "--max-connections", "20"]) { s in
            var stalled: [TestHTTPConnection] = []
            defer { for connection in stalled { connection.close() } }
            for n in 0..<50 {
                // Half send a piece of a head, half nothing.
                let bytes = n.isMultiple(of: 2) ? Array("GET /healthz HTTP/1.1\r\nHost: 127".utf8) : []
                stalled.append(try await Self.open(s.port, sending: bytes, timeout: 60))
            }
            // Behind them in the backlog: answered once the stalled ones have been closed.
            let connection = try await Self.open(s.port, sending: Self.get("/healthz"), timeout: 60)
            defer { connection.close() }
            let answer = try await Self.response(connection)
            #expect(answer.status == 200, "\(answer)")
            // Each stalled client was closed; those that had sent bytes were answered 408 first.
            for (n, connection) in stalled.enumerated() {
                if n.isMultiple(of: 2) {
                    let timedOut = try await Self.response(connection)
                    #expect(timedOut.status == 408, "\(timedOut)")
                }
                #expect(try await Self.closed(connection))
            }
            Self.expectNoErrorsLogged(s)
        }
    }
}
