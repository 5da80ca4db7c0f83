import Foundation
import Testing
import TollgateTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A real nginx with `auth_request` in front of a small upstream, asking the real
/// `tollgate serve` (`GET /v1/check`) before every request.
@Suite("nginx auth_request in front of an upstream, asking tollgate serve")
struct NginxGatewayTests {
    @Test("a good key reaches the upstream and pays the price; no key or an unknown key 401; no credit 403 and the upstream sees nothing more")
    func gateway() async throws {
        let redis = try await TestRedis.start()
        defer { redis.single?.stop() }
        // 0.5 credits at 0.123456 per call: four calls pass (0.493824), the fifth is denied.
        let price = 123_456
        try await cli(redis, "account", "create", "acme")
        try await cli(redis, "credit", "acme", "0.5", "--id", "topup-1")
        try await cli(redis, "price", "set", "api_call", "0.123456")
        let created = try JSONSerialization.jsonObject(with: Data(try await cli(redis, "key", "create", "acme", "--json").utf8))
        let key = try #require((created as? [String: Any])?["secret"] as? String)
        let keyID = try #require((created as? [String: Any])?["key_id"] as? String)

        let readmeBlock = try readmeNginxBlock()
        let tollgate = try await TollgateServe.start(redis: redis)
        let nginx: NginxProcess
        do {
            nginx = try await NginxProcess.start(portCount: 2) { directory, ports in
                gatewayConfiguration(directory: directory, gateway: ports[0], upstream: ports[1],
                                     tollgate: tollgate.port, serviceToken: TollgateServe.serviceToken, readmeBlock: readmeBlock)
            }
        } catch {
            await tollgate.stop()
            throw error
        }
        let gateway = nginx.ports[0]
        func upstreamRequests() -> [UpstreamRequest] {
            nginx.file("upstream.log").split(separator: "\n").map { UpstreamRequest(line: String($0)) }
        }
        func balance() async throws -> Int {
            let response = try await HTTP.request(port: tollgate.port, "GET", "/v1/accounts/acme",
                                                  headers: ["Authorization": "Bearer \(TollgateServe.adminToken)"])
            try #require(response.status == 200, "\(response.body)")
            let account = try #require(try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any])
            return try micros(try #require(account["balance"] as? String))
        }

        do {
            #expect(try await balance() == 500_000)
            #expect(upstreamRequests().isEmpty)

            // A good key (X-Api-Key) reaches the upstream and pays exactly the price. The usage,
            // the service token, the request id and the account the upstream is told are the
            // gateway's to set: a client's own headers of those names, and a usage in its query,
            // change nothing.
            let hostile = ["X-Tollgate-Usage": "api_call=0", "Tollgate-Service-Token": "forged",
                           "X-Request-Id": "replay-me", "X-Tollgate-Account": "victim"]
            let first = try await HTTP.request(port: gateway, "GET", "/models?page=1&usage=api_call%3D0",
                                               headers: hostile.merging(["X-Api-Key": key]) { $1 })
            #expect(first.status == 200)
            #expect(first.body == "upstream ok\n")
            #expect(upstreamRequests().count == 1)
            #expect(upstreamRequests().first?.uri == "/models?page=1&usage=api_call%3D0")
            #expect(upstreamRequests().first?.account == "acme")
            #expect(upstreamRequests().first?.requestID != "replay-me")
            #expect(try await balance() == 500_000 - price)
            // The same hostile request id again is a new call, charged again, not a replay.
            let second = try await HTTP.request(port: gateway, "GET", "/models", headers: hostile.merging(["X-Api-Key": key]) { $1 })
            #expect(second.status == 200)
            #expect(try await balance() == 500_000 - 2 * price)

            // No key: 401 from the check, passed through by nginx; the upstream sees nothing.
            let missing = try await HTTP.request(port: gateway, "GET", "/models")
            #expect(missing.status == 401)
            #expect(missing.header("X-Tollgate-Reason") == "missing_key")
            // An unknown key (in either header form): 401.
            let unknown = try await HTTP.request(port: gateway, "GET", "/models", headers: ["X-Api-Key": "tg_not_a_key"])
            #expect(unknown.status == 401)
            #expect(unknown.header("X-Tollgate-Reason") == "unknown_key")
            let unknownBearer = try await HTTP.request(port: gateway, "GET", "/models", headers: ["Authorization": "Bearer tg_nope"])
            #expect(unknownBearer.status == 401)
            #expect(upstreamRequests().count == 2)
            #expect(try await balance() == 500_000 - 2 * price)

            // The key as a bearer token works too; two more calls use the credit up.
            for path in ["/a", "/b"] {
                let response = try await HTTP.request(port: gateway, "GET", path, headers: ["Authorization": "Bearer \(key)"])
                #expect(response.status == 200, "\(path)")
            }
            #expect(upstreamRequests().count == 4)
            #expect(try await balance() == 500_000 - 4 * price)

            // Out of credit: 403 with the reason, the balance stays, the upstream sees nothing more.
            for attempt in 0..<3 {
                let denied = try await HTTP.request(port: gateway, "GET", "/d", headers: ["X-Api-Key": key])
                #expect(denied.status == 403, "attempt \(attempt)")
                #expect(denied.header("X-Tollgate-Reason") == "insufficient_credit")
            }
            #expect(upstreamRequests().count == 4)
            #expect(try await balance() == 500_000 - 4 * price)

            // A revoked key is 401 again.
            let revoke = try await HTTP.request(port: tollgate.port, "DELETE", "/v1/keys/\(keyID)",
                                                headers: ["Authorization": "Bearer \(TollgateServe.adminToken)"])
            #expect(revoke.status == 200)
            let revoked = try await HTTP.request(port: gateway, "GET", "/e", headers: ["X-Api-Key": key])
            #expect(revoked.status == 401)
            #expect(revoked.header("X-Tollgate-Reason") == "key_revoked")
            #expect(upstreamRequests().count == 4)

            // Every call the upstream saw was debited once, under the request id nginx gave it.
            let ledger = try JSONSerialization.jsonObject(with: Data(try await cli(redis, "ledger", "acme", "--json").utf8))
            let debits = try #require(ledger as? [[String: Any]]).filter { $0["kind"] as? String == "debit" }
            #expect(debits.count == 4)
            #expect(debits.allSatisfy { $0["amount"] as? String == "-0.123456" })
            let debited = Set(debits.compactMap { $0["request_id"] as? String })
            let seen = Set(upstreamRequests().map(\.requestID))
            #expect(debited.count == 4 && debited == seen, "ledger \(debited), upstream \(seen)")
            #expect(nginx.isRunning, "\(nginx.file("error.log").suffix(2000))")
        } catch {
            await nginx.stop()
            await tollgate.stop()
            throw error
        }
        // Both stop cleanly on their signals (a raw wait status of 0 is "exited with 0").
        #expect(await nginx.stop() == 0, "\(nginx.file("error.log").suffix(2000))")
        #expect(await tollgate.stop() == 0)
    }
}

/// nginx in front of an upstream on another port, configured with the README's nginx block as
/// it stands (a user copies it verbatim): only its addresses and token are filled in. Every
/// request to the gateway first asks tollgate's `/v1/check` (auth_request), which nginx passes
/// through as 401/403; the upstream logs each request it answers to `upstream.log` (request id,
/// account, URI). nginx runs one worker, a single event loop, which writes the upstream's log
/// line as it finishes that request, before it relays the response on the gateway side: when
/// the client has its answer, the log is complete.
private func gatewayConfiguration(directory: String, gateway: Int, upstream: Int, tollgate: Int, serviceToken: String,
                                  readmeBlock block: String) -> String {
    let filled = block.replacingOccurrences(of: "127.0.0.1:8080", with: "127.0.0.1:\(tollgate)")
        .replacingOccurrences(of: "SERVICE_TOKEN", with: serviceToken)
    return """
        log_format seen '$http_x_request_id $http_x_tollgate_account $request_uri';
        upstream upstream {
            server 127.0.0.1:\(upstream);
        }
        server {
            listen 127.0.0.1:\(upstream);
            access_log \(directory)/upstream.log seen;
            location / {
                default_type text/plain;
                return 200 "upstream ok\\n";
            }
        }
        server {
            listen 127.0.0.1:\(gateway);
            access_log \(directory)/gateway.log;
        \(filled)
        }
    """
}

/// The README's nginx block, as a user would copy it.
private func readmeNginxBlock() throws -> String {
    let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("README.md")
    let text = try String(contentsOf: readme, encoding: .utf8)
    guard let start = text.range(of: "```nginx\n"), let end = text.range(of: "```", range: start.upperBound..<text.endIndex) else {
        throw NginxError(message: "README.md has no nginx block")
    }
    let block = String(text[start.upperBound..<end.lowerBound])
    guard block.contains("127.0.0.1:8080"), block.contains("SERVICE_TOKEN"), block.contains("http://upstream;") else {
        throw NginxError(message: "the README's nginx block no longer names 127.0.0.1:8080, SERVICE_TOKEN and http://upstream")
    }
    return block
}

/// One line of the upstream's log.
private struct UpstreamRequest {
    let requestID: String
    let account: String
    let uri: String

    init(line: String) {
        let parts = line.split(separator: " ", maxSplits: 2).map(String.init)
        requestID = parts.count > 0 ? parts[0] : ""
        account = parts.count > 1 ? parts[1] : ""
        uri = parts.count > 2 ? parts[2] : ""
    }
}

/// Runs the `tollgate` CLI against `redis` and returns what it printed; fails on an error.
@discardableResult
private func cli(_ redis: TestRedis, _ arguments: String...) async throws -> String {
    let result = try await CommandRunner.run(CommandRunner.product("tollgate"), arguments, environment: redis.environment)
    try #require(result.status == 0, "tollgate \(arguments.joined(separator: " ")): \(result.stderr)")
    return result.stdout
}

/// Micro-credits of a decimal credit string such as "0.376544".
private func micros(_ text: String) throws -> Int {
    let parts = text.split(separator: ".", omittingEmptySubsequences: false)
    let whole = try #require(Int(parts[0]))
    let fraction = parts.count > 1 ? String(parts[1]) : ""
    try #require(parts.count <= 2 && fraction.count <= 6)
    return whole * 1_000_000 + (try #require(Int(fraction.padding(toLength: 6, withPad: "0", startingAt: 0))))
}

/// The real `tollgate serve` on a free port, against a test Redis, with known tokens.
private final class TollgateServe: Sendable {
    static let adminToken = "admin-\(UUID().uuidString)"
    static let serviceToken = "service-\(UUID().uuidString)"
    let port: Int
    let directory: URL
    private let child: ChildProcess

    private init(port: Int, directory: URL, child: ChildProcess) {
        self.port = port
        self.directory = directory
        self.child = child
    }

    deinit {
        try? FileManager.default.removeItem(at: directory)
    }

    /// Starts the server and waits for its first line, `tollgate listening on http://HOST:PORT (...)`.
    static func start(redis: TestRedis) async throws -> TollgateServe {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("tollgate-serve-\(UUID().uuidString.prefix(8))", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let stdout = directory.appendingPathComponent("stdout.log").path
        let stderr = directory.appendingPathComponent("stderr.log").path
        let child = try ChildProcess.spawn(
            CommandRunner.product("tollgate").path,
            ["serve"] + redis.serveArguments + ["--host", "127.0.0.1", "--port", "0", "--data-dir", directory.path,
             "--admin-token", adminToken, "--service-token", serviceToken, "--log-level", "warning"],
            stdout: stdout, stderr: stderr)
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline, child.isRunning {
            let printed = (try? String(contentsOfFile: stdout, encoding: .utf8)) ?? ""
            let prefix = "tollgate listening on http://127.0.0.1:"
            if let line = printed.split(separator: "\n").first, printed.contains("\n"), line.hasPrefix(prefix),
               let port = Int(line.dropFirst(prefix.count).prefix { $0.isNumber }) {
                return TollgateServe(port: port, directory: directory, child: child)
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        await child.stop(signal: SIGKILL, timeout: .seconds(5))
        let log = (try? String(contentsOfFile: stderr, encoding: .utf8)) ?? ""
        try? FileManager.default.removeItem(at: directory)
        throw NginxError(message: "tollgate serve did not start; stderr:\n\(log.suffix(2000))")
    }

    /// SIGTERM: the server finishes requests in flight and exits; the raw wait status.
    @discardableResult
    func stop() async -> Int32 {
        await child.stop(signal: SIGTERM, timeout: .seconds(15))
    }
}

/// A minimal HTTP/1.1 client over a blocking socket (one request per connection), run on its
/// own thread so no cooperative thread waits on the network.
private enum HTTP {
    struct Response: Sendable {
        let status: Int
        let headers: [(name: String, value: String)]
        let body: String

        func header(_ name: String) -> String? {
            headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
        }
    }

    static func request(port: Int, _ method: String, _ path: String, headers: [String: String] = [:]) async throws -> Response {
        try await withCheckedThrowingContinuation { continuation in
            Thread {
                continuation.resume(with: Result { try blocking(port: port, method, path, headers: headers) })
            }.start()
        }
    }

    private static func blocking(port: Int, _ method: String, _ path: String, headers: [String: String]) throws -> Response {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw NginxError(message: "socket() failed") }
        defer { close(descriptor) }
        var timeout = timeval(tv_sec: 15, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw NginxError(message: "cannot connect to 127.0.0.1:\(port): \(String(cString: strerror(errno)))") }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) { head += "\(name): \(value)\r\n" }
        head += "\r\n"
        let request = Array(head.utf8)
        var sent = 0
        while sent < request.count {
            let written = request[sent...].withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard written > 0 else { throw NginxError(message: "send failed: \(String(cString: strerror(errno)))") }
            sent += written
        }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count == 0 { break }
            guard count > 0 else { throw NginxError(message: "recv failed: \(String(cString: strerror(errno)))") }
            received += buffer[0..<count]
        }
        return try parse(received)
    }

    private static func parse(_ bytes: [UInt8]) throws -> Response {
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        guard let end = (0...max(0, bytes.count - 4)).first(where: { Array(bytes[$0..<min($0 + 4, bytes.count)]) == separator }) else {
            throw NginxError(message: "no HTTP head in \(String(decoding: bytes, as: UTF8.self))")
        }
        let lines = String(decoding: bytes[..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ")
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else { throw NginxError(message: "bad status line \(lines[0])") }
        let headers = lines.dropFirst().compactMap { line -> (name: String, value: String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        var body = Array(bytes[(end + 4)...])
        if headers.contains(where: { $0.name.lowercased() == "transfer-encoding" && $0.value.lowercased().contains("chunked") }) {
            body = try dechunk(body)
        }
        return Response(status: status, headers: headers, body: String(decoding: body, as: UTF8.self))
    }

    private static func dechunk(_ bytes: [UInt8]) throws -> [UInt8] {
        var output: [UInt8] = []
        var index = 0
        while index < bytes.count {
            guard let lineEnd = (index..<bytes.count).first(where: { bytes[$0] == UInt8(ascii: "\n") }) else { break }
            let sizeText = String(decoding: bytes[index..<lineEnd], as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ";").first ?? ""
            guard let size = Int(sizeText, radix: 16) else { throw NginxError(message: "bad chunk size \(sizeText)") }
            if size == 0 { break }
            let start = lineEnd + 1
            guard start + size <= bytes.count else { throw NginxError(message: "truncated chunk") }
            output += bytes[start..<(start + size)]
            index = start + size + 2
        }
        return output
    }
}
