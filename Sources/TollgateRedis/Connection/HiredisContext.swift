import CHiredis
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one owner of a hiredis `redisContext`: connects, writes, reads, frees.
///
/// hiredis contexts are not thread-safe and block, so an instance is only ever used from its
/// connection's own I/O thread, never from the cooperative pool or an event loop.
final class HiredisContext {
    private let context: UnsafeMutablePointer<redisContext>

    private init(_ context: UnsafeMutablePointer<redisContext>) {
        self.context = context
    }

    deinit {
        redisFree(context)
    }

    /// Connects, applies the command timeout, then authenticates and selects the database.
    static func connect(to configuration: RedisConfiguration) throws(RedisError) -> HiredisContext {
        let connectTimeout = timeval(configuration.connectTimeout)
        let raw: UnsafeMutablePointer<redisContext>?
        switch configuration.address.endpoint {
        case .tcp(let host, let port):
            raw = redisConnectWithTimeout(host, Int32(port), connectTimeout)
        case .unixSocket(let path):
            raw = redisConnectUnixWithTimeout(path, connectTimeout)
        }
        guard let raw else {
            throw RedisError(.connectionRefused, "cannot allocate a connection to \(configuration.address)")
        }
        let owner = HiredisContext(raw)
        if raw.pointee.err != 0 {
            throw owner.lastError(connecting: true, address: configuration.address)
        }
        // A child process started while this socket is open (the embedded redis-server, any
        // process a test starts) would inherit it and keep the connection open on the server
        // after this side has closed it: a timed-out BLPOP would stay blocked and swallow a
        // later push. hiredis opens its sockets without close-on-exec, so set it here.
        _ = fcntl(raw.pointee.fd, F_SETFD, FD_CLOEXEC)
        guard redisSetTimeout(raw, timeval(configuration.commandTimeout)) == REDIS_OK else {
            throw owner.lastError(connecting: true, address: configuration.address)
        }
        if let password = configuration.address.password {
            var auth = RedisCommand("AUTH")
            if let user = configuration.address.user { auth.append(user) }
            auth.append(password)
            try owner.handshake(auth, what: "AUTH", address: configuration.address)
        }
        if configuration.address.database != 0 {
            var select = RedisCommand("SELECT")
            select.append(configuration.address.database)
            try owner.handshake(select, what: "SELECT", address: configuration.address)
        }
        return owner
    }

    private func handshake(_ command: RedisCommand, what: String, address: RedisAddress) throws(RedisError) {
        append(command)
        let reply = try readReply()
        if case .error(let message) = reply {
            throw RedisError(.connectionRefused, "\(what) on \(address) failed: \(message)")
        }
    }

    /// Queues a command in hiredis' output buffer; nothing is written until `readReply`.
    func append(_ command: RedisCommand) {
        command.header.withUnsafeBufferPointer { header in
            _ = header.withMemoryRebound(to: CChar.self) { redisAppendFormattedCommand(context, $0.baseAddress, $0.count) }
        }
        command.body.withUnsafeBufferPointer { body in
            _ = body.withMemoryRebound(to: CChar.self) { redisAppendFormattedCommand(context, $0.baseAddress, $0.count) }
        }
    }

    /// Flushes what is queued, then blocks (up to the command timeout) for the next reply.
    func readReply() throws(RedisError) -> RESPValue {
        var reply: UnsafeMutableRawPointer?
        guard redisGetReply(context, &reply) == REDIS_OK, let reply else {
            throw lastError(connecting: false, address: nil)
        }
        defer { freeReplyObject(reply) }
        return RESPValue(reply.assumingMemoryBound(to: redisReply.self))
    }

    // MARK: Non-blocking reads, for subscriber connections

    /// Writes everything queued by `append`.
    func flush() throws(RedisError) {
        var done: Int32 = 0
        repeat {
            guard redisBufferWrite(context, &done) == REDIS_OK else { throw lastError(connecting: false, address: nil) }
        } while done == 0
    }

    /// The next reply already read into hiredis' buffer, or nil when none is complete yet.
    func bufferedReply() throws(RedisError) -> RESPValue? {
        var reply: UnsafeMutableRawPointer?
        guard redisGetReplyFromReader(context, &reply) == REDIS_OK else { throw lastError(connecting: false, address: nil) }
        guard let reply else { return nil }
        defer { freeReplyObject(reply) }
        return RESPValue(reply.assumingMemoryBound(to: redisReply.self))
    }

    /// Waits up to `milliseconds` for bytes to read; reads them into the buffer when they come.
    /// Returns whether anything was read. A closed connection throws.
    func readAvailable(waitingUpTo milliseconds: Int32) throws(RedisError) -> Bool {
        var descriptor = pollfd(fd: context.pointee.fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&descriptor, 1, milliseconds)
        guard ready > 0 else { return false }
        guard redisBufferRead(context) == REDIS_OK else { throw lastError(connecting: false, address: nil) }
        return true
    }

    private func lastError(connecting: Bool, address: RedisAddress?) -> RedisError {
        let savedErrno = errno
        let message = withUnsafeBytes(of: context.pointee.errstr) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        let place = address.map { " (\($0))" } ?? ""
        switch context.pointee.err {
        case REDIS_ERR_IO:
            if savedErrno == EAGAIN || savedErrno == EWOULDBLOCK || savedErrno == ETIMEDOUT || message.contains("timed out")
                || message.contains("temporarily unavailable") {
                return RedisError(.timeout, (connecting ? "connect timed out" : "no reply within the timeout") + place)
            }
            return RedisError(connecting ? .connectionRefused : .connectionClosed, message + place)
        case REDIS_ERR_EOF:
            return RedisError(.connectionClosed, "server closed the connection" + place)
        case REDIS_ERR_PROTOCOL:
            return RedisError(.protocolError, message + place)
        default:
            return RedisError(connecting ? .connectionRefused : .connectionClosed, message + place)
        }
    }
}

extension RESPValue {
    /// Copies a hiredis reply tree into Swift values (the caller frees the tree).
    init(_ reply: UnsafeMutablePointer<redisReply>) {
        let node = reply.pointee
        switch node.type {
        case REDIS_REPLY_STRING:
            self = .bulkString(Self.bytes(node.str, node.len))
        case REDIS_REPLY_STATUS:
            self = .simpleString(String(decoding: Self.bytes(node.str, node.len), as: UTF8.self))
        case REDIS_REPLY_ERROR:
            self = .error(String(decoding: Self.bytes(node.str, node.len), as: UTF8.self))
        case REDIS_REPLY_INTEGER:
            self = .integer(Int64(node.integer))
        case REDIS_REPLY_ARRAY:
            var elements: [RESPValue] = []
            elements.reserveCapacity(Int(node.elements))
            for index in 0..<Int(node.elements) {
                if let child = node.element[index] {
                    elements.append(RESPValue(child))
                } else {
                    elements.append(.null)
                }
            }
            self = .array(elements)
        default:
            self = .null
        }
    }

    private static func bytes(_ pointer: UnsafeMutablePointer<CChar>?, _ count: Int) -> [UInt8] {
        guard let pointer, count > 0 else { return [] }
        return pointer.withMemoryRebound(to: UInt8.self, capacity: count) { Array(UnsafeBufferPointer(start: $0, count: count)) }
    }
}

extension timeval {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self.init(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
    }
}
