import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One Server-Sent Event as a test received it.
public struct SSEEvent: Sendable, Hashable {
    /// The `id:` field, if the event had one.
    public let id: String?
    /// The `event:` field (`message` when absent).
    public let event: String
    /// The `data:` lines joined with newlines.
    public let data: String
    /// When it was read off the socket (wall clock, ms since the epoch, fractional).
    public let receivedAt: Double

    /// The data parsed as a JSON object (nil when it is not one).
    public var object: [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(data.utf8))) as? [String: Any]
    }

    /// A string field of the JSON data.
    public subscript(field: String) -> String? { object?[field] as? String }
}

/// Any number of SSE connections to a test server, read by one thread with `poll(2)`, so a
/// thousand subscribers cost one thread. Each connection sends its GET once; the thread
/// de-chunks the response body, parses events and keeps them (heartbeat comments are counted,
/// not kept). Async callers poll what arrived; nothing blocks the cooperative pool.
public final class SSEStreams: Sendable {
    private struct Connection {
        var descriptor: Int32
        var raw: [UInt8] = []
        var headersDone = false
        var status = 0
        var chunked = false
        var body: [UInt8] = []
        var events: [SSEEvent] = []
        var heartbeats = 0
        var closed = false
        var paused = false
    }

    private let state: Mutex<[Connection]>
    private let stopped = Atomic<Bool>(false)

    /// Opens `count` connections to `GET path` with `Authorization: Bearer token` (and
    /// `Last-Event-ID` when given).
    /// `paused` connections are not read until `resume`; `receiveBufferSize` shrinks their
    /// socket receive buffer, so a paused subscriber backs up quickly (a stuck client).
    public init(port: Int, path: String, token: String?, count: Int = 1, lastEventID: String? = nil,
                paused: Bool = false, receiveBufferSize: Int? = nil) throws {
        var connections: [Connection] = []
        var request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nAccept: text/event-stream\r\n"
        if let token { request += "Authorization: Bearer \(token)\r\n" }
        if let lastEventID { request += "Last-Event-ID: \(lastEventID)\r\n" }
        request += "\r\n"
        let bytes = Array(request.utf8)
        do {
            for _ in 0..<count {
                let descriptor = try Self.connect(port: port, receiveBufferSize: receiveBufferSize)
                connections.append(Connection(descriptor: descriptor, paused: paused))
                try Self.writeAll(descriptor, bytes)
            }
        } catch {
            for connection in connections { Glibc.close(connection.descriptor) }
            throw error
        }
        state = Mutex(connections)
        let thread = Thread { [self] in self.readLoop() }
        thread.name = "test-sse-reader"
        thread.start()
    }

    deinit { close() }

    /// Closes every connection (the reader thread ends).
    public func close() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
    }

    /// Closes one connection abruptly, as a client that goes away would.
    public func drop(_ index: Int) {
        state.withLock { connections in
            guard !connections[index].closed else { return }
            connections[index].closed = true
            Glibc.shutdown(connections[index].descriptor, Int32(SHUT_RDWR))
        }
    }

    /// Starts reading a paused connection.
    public func resume(_ index: Int = 0) {
        state.withLock { $0[index].paused = false }
    }

    /// The events connection `index` received so far.
    public func events(_ index: Int = 0) -> [SSEEvent] { state.withLock { $0[index].events } }
    /// How many heartbeat comments connection `index` received.
    public func heartbeats(_ index: Int = 0) -> Int { state.withLock { $0[index].heartbeats } }
    /// The response status of connection `index` (0 until the headers arrived).
    public func status(_ index: Int = 0) -> Int { state.withLock { $0[index].status } }
    /// Whether the server closed connection `index`.
    public func isClosed(_ index: Int = 0) -> Bool { state.withLock { $0[index].closed } }
    /// How many connections there are.
    public var count: Int { state.withLock { $0.count } }

    /// Waits until `condition` holds for the events of every connection; throws after `timeout`
    /// (a hang bound, not a speed claim).
    public func waitUntilAll(timeout: Duration = .seconds(60), _ condition: ([SSEEvent]) -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while true {
            let done = state.withLock { connections in connections.allSatisfy { condition($0.events) } }
            if done { return }
            guard ContinuousClock.now < deadline else {
                let counts = state.withLock { $0.map(\.events.count) }
                throw TestHTTPError("SSE condition not met within \(timeout); event counts: \(counts.prefix(20))")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Waits until `condition` holds for connection `index`'s events.
    public func waitUntil(_ index: Int = 0, timeout: Duration = .seconds(60), _ condition: ([SSEEvent]) -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while true {
            if state.withLock({ condition($0[index].events) }) { return }
            guard ContinuousClock.now < deadline else {
                throw TestHTTPError("SSE condition not met within \(timeout); events: \(events(index).map { "\($0.event) \($0.id ?? "")" }.suffix(10))")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Waits until the server has closed connection `index`.
    public func waitUntilClosed(_ index: Int = 0, timeout: Duration = .seconds(60)) async throws {
        let deadline = ContinuousClock.now + timeout
        while !isClosed(index) {
            guard ContinuousClock.now < deadline else { throw TestHTTPError("SSE connection \(index) still open after \(timeout)") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    private func readLoop() {
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while !stopped.load(ordering: .acquiring) {
            var fds = state.withLock { connections in
                connections.map { pollfd(fd: $0.closed || $0.paused ? -1 : $0.descriptor, events: Int16(POLLIN), revents: 0) }
            }
            if fds.allSatisfy({ $0.fd < 0 }) { usleep(20_000); continue }
            let ready = poll(&fds, nfds_t(fds.count), 50)
            guard ready > 0 else { continue }
            let now = Date().timeIntervalSince1970 * 1000
            for (index, fd) in fds.enumerated() where fd.fd >= 0 && fd.revents != 0 {
                let count = chunk.withUnsafeMutableBytes { recv(fd.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                state.withLock { connections in
                    if count > 0 {
                        connections[index].raw += chunk[0..<count]
                        Self.parse(&connections[index], at: now)
                    } else if count == 0 || (errno != EAGAIN && errno != EINTR) {
                        connections[index].closed = true
                    }
                }
            }
        }
        state.withLock { connections in
            for index in connections.indices {
                Glibc.close(connections[index].descriptor)
                connections[index].closed = true
            }
        }
    }

    private static func parse(_ c: inout Connection, at now: Double) {
        if !c.headersDone {
            guard let end = find([13, 10, 13, 10], in: c.raw) else { return }
            let head = String(decoding: c.raw[..<end], as: UTF8.self).lowercased()
            c.status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
            c.chunked = head.contains("transfer-encoding: chunked")
            c.raw.removeFirst(end + 4)
            c.headersDone = true
        }
        if c.chunked {
            while let lineEnd = find([13, 10], in: c.raw) {
                let sizeText = String(decoding: c.raw[..<lineEnd], as: UTF8.self).split(separator: ";").first ?? ""
                guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else { break }
                guard c.raw.count >= lineEnd + 2 + size + 2 else { break }
                c.body += c.raw[(lineEnd + 2)..<(lineEnd + 2 + size)]
                c.raw.removeFirst(lineEnd + 2 + size + 2)
            }
        } else {
            c.body += c.raw
            c.raw.removeAll()
        }
        while let end = find([10, 10], in: c.body) {
            let block = String(decoding: c.body[..<end], as: UTF8.self)
            c.body.removeFirst(end + 2)
            var id: String?, event = "message", data: [String] = [], comment = false
            for line in block.split(separator: "\n", omittingEmptySubsequences: false) {
                if line.hasPrefix(":") { comment = true; continue }
                let parts = line.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
                let field = String(parts[0])
                var value = parts.count > 1 ? String(parts[1]) : ""
                if value.hasPrefix(" ") { value.removeFirst() }
                switch field {
                case "id": id = value
                case "event": event = value
                case "data": data.append(value)
                default: break
                }
            }
            if data.isEmpty {
                if comment { c.heartbeats += 1 }
                continue
            }
            c.events.append(SSEEvent(id: id, event: event, data: data.joined(separator: "\n"), receivedAt: now))
        }
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        var index = 0
        while index + needle.count <= haystack.count {
            if haystack[index] == needle[0] && Array(haystack[index..<(index + needle.count)]) == needle { return index }
            index += 1
        }
        return nil
    }

    private static func connect(port: Int, receiveBufferSize: Int?) throws -> Int32 {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw TestHTTPError("socket: \(String(cString: strerror(errno)))") }
        if var size = receiveBufferSize.map(Int32.init) {
            setsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            let message = String(cString: strerror(errno))
            Glibc.close(descriptor)
            throw TestHTTPError("connect to 127.0.0.1:\(port): \(message)")
        }
        return descriptor
    }

    private static func writeAll(_ descriptor: Int32, _ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if sent < 0 {
                if errno == EINTR { continue }
                throw TestHTTPError("send: \(String(cString: strerror(errno)))")
            }
            offset += sent
        }
    }
}
