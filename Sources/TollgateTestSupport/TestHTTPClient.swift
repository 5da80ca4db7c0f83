import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A response as it came off the wire.
public struct TestHTTPResponse: Sendable, CustomStringConvertible {
    public let status: Int
    /// Header fields in order, names as sent.
    public let headers: [HeaderField]
    public let body: [UInt8]

    public struct HeaderField: Sendable, Hashable {
        public let name: String
        public let value: String
    }

    /// The first value of a header field (names compare case-insensitively).
    public func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    /// The body as UTF-8 text.
    public var text: String { String(decoding: body, as: UTF8.self) }

    /// The body parsed as JSON (objects, arrays, strings, numbers, booleans, NSNull).
    public func json() throws -> Any {
        try JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed])
    }

    /// The body as a JSON object, or nil.
    public var object: [String: Any]? { (try? json()) as? [String: Any] }

    public var description: String { "HTTP \(status) \(text.prefix(600))" }
}

/// A deliberately small HTTP/1.1 client over a blocking socket, for tests that need to send
/// exactly the bytes they mean (raw paths, odd headers, oversized or slow bodies). Every
/// request runs on a thread of its own, never on the cooperative pool.
public struct TestHTTPClient: Sendable {
    public let host: String
    public let port: Int

    public init(host: String = "127.0.0.1", port: Int) {
        self.host = host
        self.port = port
    }

    /// Sends one request on a new connection (`Connection: close`) and reads the response.
    /// `path` goes on the request line as given (percent-encode it yourself).
    public func send(
        _ method: String, _ path: String, headers: [(String, String)] = [], body: [UInt8]? = nil
    ) async throws -> TestHTTPResponse {
        let host = host, port = port
        let request = Self.request(method, path, host: "\(host):\(port)", headers: headers, body: body)
        return try await TestHTTPConnection.onThread {
            let connection = try TestHTTPConnection(host: host, port: port)
            defer { connection.close() }
            // A server may answer (413, say) and close before reading the whole body: then the
            // write fails, and the answer is still there to read.
            try? connection.write(request)
            return try connection.readResponse(method: method)
        }
    }

    /// Asks to upgrade `path` to a WebSocket as a browser does (no `Connection: close`), with
    /// `bearer` as its token, and reads the answer: 101 when upgraded.
    public func webSocketUpgrade(_ path: String, bearer: String) async throws -> TestHTTPResponse {
        let host = host, port = port
        let request = Self.request("GET", path, host: "\(host):\(port)", headers: [
            ("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Authorization", "Bearer \(bearer)"),
        ], body: nil, close: false)
        return try await TestHTTPConnection.onThread {
            let connection = try TestHTTPConnection(host: host, port: port)
            defer { connection.close() }
            try connection.write(request)
            return try connection.readResponse(method: "GET")
        }
    }

    /// Sends a JSON body (`Any` made of dictionaries, arrays, strings, numbers, booleans).
    public func json(
        _ method: String, _ path: String, token: String? = nil, headers: [(String, String)] = [], body: Any? = nil
    ) async throws -> TestHTTPResponse {
        var fields = headers
        if let token { fields.append(("Authorization", "Bearer \(token)")) }
        var bytes: [UInt8]?
        if let body {
            bytes = Array(try JSONSerialization.data(withJSONObject: body, options: [.fragmentsAllowed]))
            fields.append(("Content-Type", "application/json"))
        }
        return try await send(method, path, headers: fields, body: bytes)
    }

    /// The bytes of a request.
    public static func request(_ method: String, _ path: String, host: String, headers: [(String, String)], body: [UInt8]?, close: Bool = true) -> [UInt8] {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(host)\r\n"
        if close { head += "Connection: close\r\n" }
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if let body {
            head += "Content-Length: \(body.count)\r\n"
        } else if ["POST", "PUT", "PATCH"].contains(method) {
            head += "Content-Length: 0\r\n"
        }
        head += "\r\n"
        return Array(head.utf8) + (body ?? [])
    }
}

/// One blocking TCP connection with read and write timeouts. Use from `onThread`.
public final class TestHTTPConnection: @unchecked Sendable {
    private let descriptor: Int32
    private var buffer: [UInt8] = []

    /// Connects to `host:port` (an IPv4 address) with `timeout` on every read and write.
    public init(host: String, port: Int, timeout: Int = 30) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw TestHTTPError("socket: \(String(cString: strerror(errno)))") }
        var time = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            Glibc.close(descriptor)
            throw TestHTTPError("not an IPv4 address: \(host)")
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            let message = String(cString: strerror(errno))
            Glibc.close(descriptor)
            throw TestHTTPError("connect to \(host):\(port): \(message)")
        }
    }

    deinit { close() }

    private var closed = false

    public func close() {
        guard !closed else { return }
        closed = true
        Glibc.close(descriptor)
    }

    /// Writes all of `bytes` (no SIGPIPE: a closed peer is an error).
    public func write(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes { raw in
                Glibc.send(descriptor, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
            }
            if sent < 0 {
                if errno == EINTR { continue }
                throw TestHTTPError("send: \(String(cString: strerror(errno)))")
            }
            offset += sent
        }
    }

    /// Reads more bytes into the buffer; false at the end of the stream.
    private func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                buffer += chunk[0..<count]
                return true
            }
            if count == 0 { return false }
            if errno == EINTR { continue }
            if errno == ECONNRESET, !buffer.isEmpty { return false }
            throw TestHTTPError("recv: \(String(cString: strerror(errno)))")
        }
    }

    /// Waits for the peer to close the connection: true when the stream ends (or is reset)
    /// with no more bytes, false when bytes arrive instead. Throws when a read times out.
    public func waitForClose() throws -> Bool {
        guard buffer.isEmpty else { return false }
        var byte: UInt8 = 0
        while true {
            // Peeks: a byte that arrives stays for `readResponse`.
            let count = recv(descriptor, &byte, 1, Int32(MSG_PEEK))
            if count == 0 { return true }
            if count > 0 { return false }
            if errno == EINTR { continue }
            if errno == ECONNRESET { return true }
            throw TestHTTPError("recv: \(String(cString: strerror(errno)))")
        }
    }

    /// Reads one response: status line, header fields, then a body by Content-Length, chunked
    /// transfer coding, or to the end of the stream.
    public func readResponse(method: String = "GET") throws -> TestHTTPResponse {
        let separator: [UInt8] = [13, 10, 13, 10]
        var headEnd: Int?
        while headEnd == nil {
            if let found = Self.find(separator, in: buffer) {
                headEnd = found
                break
            }
            guard try fill() else { throw TestHTTPError("the connection closed before a response (got \(buffer.count) bytes)") }
        }
        let head = String(decoding: buffer[0..<headEnd!], as: UTF8.self)
        buffer.removeFirst(headEnd! + 4)
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ", maxSplits: 2)
        guard statusLine.count >= 2, statusLine[0].hasPrefix("HTTP/1."), let status = Int(statusLine[1]) else {
            throw TestHTTPError("bad status line in \(head.prefix(200))")
        }
        let headers = lines.compactMap { line -> TestHTTPResponse.HeaderField? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return .init(name: String(line[..<colon]), value: line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        func header(_ name: String) -> String? { headers.first { $0.name.lowercased() == name }?.value }

        var body: [UInt8] = []
        if method == "HEAD" || status == 204 || status == 304 || (100..<200).contains(status) {
            // no body
        } else if header("transfer-encoding")?.lowercased().contains("chunked") == true {
            while true {
                var lineEnd = Self.find([13, 10], in: buffer)
                while lineEnd == nil {
                    guard try fill() else { throw TestHTTPError("the connection closed inside a chunked body") }
                    lineEnd = Self.find([13, 10], in: buffer)
                }
                let sizeText = String(decoding: buffer[0..<lineEnd!], as: UTF8.self).split(separator: ";").first ?? ""
                guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else {
                    throw TestHTTPError("bad chunk size '\(sizeText)'")
                }
                buffer.removeFirst(lineEnd! + 2)
                if size == 0 {
                    // Trailers (none expected), then the final CRLF.
                    while Self.find([13, 10], in: buffer) == nil { guard try fill() else { break } }
                    break
                }
                while buffer.count < size + 2 {
                    guard try fill() else { throw TestHTTPError("the connection closed inside a chunk") }
                }
                body += buffer[0..<size]
                buffer.removeFirst(size + 2)
            }
        } else if let length = header("content-length").flatMap({ Int($0) }) {
            while buffer.count < length {
                guard try fill() else { throw TestHTTPError("the connection closed after \(buffer.count) of \(length) body bytes") }
            }
            body = Array(buffer[0..<length])
            buffer.removeFirst(length)
        } else {
            while try fill() {}
            body = buffer
            buffer = []
        }
        return TestHTTPResponse(status: status, headers: headers, body: body)
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for start in 0...(haystack.count - needle.count) where haystack[start] == needle[0] {
            if Array(haystack[start..<(start + needle.count)]) == needle { return start }
        }
        return nil
    }

    /// Runs blocking work on a new thread and awaits its result.
    public static func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                do {
                    continuation.resume(returning: try body())
                } catch {
                    continuation.resume(throwing: error)
                }
            }
            thread.start()
        }
    }
}

/// A failure of the test HTTP client.
public struct TestHTTPError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
