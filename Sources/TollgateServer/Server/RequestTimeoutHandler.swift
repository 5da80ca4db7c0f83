import HTTPTypes
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import Metrics
import NIOCore
import NIOHTTP1

/// How long `tollgate serve` waits for clients that send nothing, or send slowly.
///
/// Without these bounds a client that opens a connection and sends its request head or body a
/// byte at a time (or nothing at all) holds the connection for as long as it likes, and a few
/// thousand such sockets fill `--max-connections` and lock everyone else out ("slowloris").
public struct RequestTimeouts: Sendable, Hashable {
    /// How long a request's head and body may take to arrive (`--request-timeout`): from the
    /// request's first byte, or for a connection's first request from the moment the
    /// connection opened. Once the request has been read, it no longer applies: a response may
    /// take, or stream for, as long as it needs.
    public var request: Duration
    /// How long a keep-alive connection may wait for its next request (`--idle-timeout`), once
    /// every response on it has been written. Longer than the 60 s an nginx upstream keeps an
    /// idle connection, so a gateway closes its spare connections before the server does and
    /// never sends a request on one the server is closing.
    public var idle: Duration

    public init(request: Duration = .seconds(10), idle: Duration = .seconds(75)) {
        self.request = request
        self.idle = idle
    }
}

/// Enforces ``RequestTimeouts`` on one HTTP/1 connection.
///
/// It sits in the pipeline right after the HTTP decoder (it sees `HTTPServerRequestPart`s as
/// they are decoded and the `HTTPServerResponsePart`s on their way to the encoder), with a
/// ``RequestBytesWatcher`` at the front of the pipeline that tells it when the first bytes of
/// a request arrive (the decoder only passes on a head once it is whole, and a slow head is
/// exactly what has to be bounded). It never blocks: deadlines are tasks scheduled on the
/// channel's event loop.
///
/// - A new connection's first request must have been read (head, body and end) within the
///   request timeout from the connection's opening; a later request on a keep-alive
///   connection within the request timeout from its first byte.
/// - While a response is pending or streaming (Server-Sent Events, LLM streams) with the
///   request read, no deadline runs. A WebSocket upgrade removes the handler
///   (``removeForUpgrade(from:)``) before the pipeline switches protocols.
/// - A request pipelined behind one whose response is still pending is timed from the moment
///   that response has ended. (One whose first bytes came in the same read as the end of the
///   request before it is timed from its next bytes or its completed head; if neither comes,
///   the idle timeout closes the connection.)
/// - Once every response has been written and no byte of a next request has arrived, the
///   idle timeout runs; when it passes, the connection is closed.
///
/// When a request deadline passes and nothing of a response to it has been written, the client
/// gets 408 `request_timeout` (if any byte of the request arrived) and the connection closes.
/// The part of the request the application was reading fails (it never sees a truncated body
/// as complete), and whatever it writes afterwards is dropped.
final class RequestTimeoutHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// The handler's name in the pipeline.
    static let name = "tollgate.request-timeout"

    /// The error the application's read of a request body fails with when the deadline passes.
    struct TimedOut: Error, CustomStringConvertible {
        var description: String { "the request did not arrive within the request timeout" }
    }

    private enum Reading {
        /// No byte of the next request has arrived.
        case waiting
        /// Bytes of a request head have arrived, not yet the whole head.
        case head
        /// The head has been passed on; the body (and its end) is still to come.
        case body
    }

    private enum Deadline {
        case none
        /// The current (or, on a new connection, the first) request must be read by then.
        case request
        /// An idle keep-alive connection is closed then.
        case idle
    }

    private let timeouts: RequestTimeouts
    private let timedOutRequests: Metrics.Counter?
    private var context: ChannelHandlerContext?
    private var reading = Reading.waiting
    private var deadline = Deadline.none
    private var timer: Scheduled<Void>?
    private var opened = false
    /// Requests read to their end, and final (not 1xx) response heads and response ends written.
    private var requestsEnded = 0
    private var responsesBegun = 0
    private var responsesEnded = 0
    /// Set once a deadline has closed the connection: nothing more is read or written.
    private var closing = false

    init(timeouts: RequestTimeouts, timedOutRequests: Metrics.Counter? = nil) {
        self.timeouts = timeouts
        self.timedOutRequests = timedOutRequests
    }

    /// Adds the handler after the HTTP decoder and its byte watcher at the front of a pipeline
    /// set up for HTTP/1 (with or without the WebSocket upgrade). Call on the event loop.
    static func install(in pipeline: ChannelPipeline.SynchronousOperations, timeouts: RequestTimeouts,
                        timedOutRequests: Metrics.Counter? = nil) throws {
        let decoder = try pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
        let handler = RequestTimeoutHandler(timeouts: timeouts, timedOutRequests: timedOutRequests)
        try pipeline.addHandler(handler, name: name, position: .after(decoder))
        try pipeline.addHandler(RequestBytesWatcher(handler), name: RequestBytesWatcher.name, position: .first)
    }

    /// Takes the handler and its watcher out of a channel's pipeline, for a WebSocket upgrade:
    /// they must be gone before the HTTP decoder is removed (it passes any bytes that followed
    /// the upgrade request on as raw bytes, which are not HTTP parts), and a WebSocket has no
    /// requests to time.
    static func removeForUpgrade(from channel: any Channel) async {
        try? await channel.pipeline.removeHandler(name: name).get()
        try? await channel.pipeline.removeHandler(name: RequestBytesWatcher.name).get()
    }

    /// A request read to its end still waits for (the end of) its response. While one does, no
    /// deadline runs: not for the response, which may stream for hours, nor for a request
    /// pipelined behind it, whose deadline starts when the response has ended.
    private var responsePending: Bool { responsesEnded < requestsEnded }

    // MARK: events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { connectionOpened() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelTimer()
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        connectionOpened()
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancelTimer()
        closing = true
        context.fireChannelInactive()
    }

    /// Bytes arrived on the connection (called by the watcher before the decoder sees them).
    func bytesArrived() {
        guard context != nil, !closing, reading == .waiting else { return }
        reading = .head
        requestStarted()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if closing { return }
        switch Self.unwrapInboundIn(data) {
        case .head:
            // A pipelined request whose first bytes came in the same read as the end of the
            // one before it has not been seen by `bytesArrived`.
            if reading == .waiting { requestStarted() }
            reading = .body
        case .body:
            break
        case .end:
            reading = .waiting
            requestsEnded += 1
            cancelTimer()
            if !responsePending { arm(.idle) }
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if closing {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        switch Self.unwrapOutboundIn(data) {
        case .head(let head):
            if head.status == .switchingProtocols {
                // An upgrade that did not go through `removeForUpgrade`: time nothing more.
                cancelTimer()
                context.write(data, promise: promise)
                context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
                return
            }
            // 100 Continue and other interim responses are not the response.
            if head.status.code >= 200 { responsesBegun += 1 }
            context.write(data, promise: promise)
        case .body:
            context.write(data, promise: promise)
        case .end:
            responsesEnded += 1
            context.write(data, promise: promise)
            // The last pending response has ended: the connection is idle, or the deferred
            // deadline of a request pipelined behind it starts. (A response written before
            // its request was read to the end leaves that request's deadline running.)
            if !responsePending, deadline == .none { arm(reading == .waiting ? .idle : .request) }
        }
    }

    // MARK: deadlines

    private func connectionOpened() {
        // Once: `handlerAdded` on an active channel and `channelActive` may both call.
        guard !opened, !closing else { return }
        opened = true
        // The first request, from the connection's opening.
        arm(.request)
    }

    /// The first bytes of a request arrived: its deadline starts, unless one already runs (a
    /// connection's first request) or a response is still pending (deferred until it ends).
    private func requestStarted() {
        guard deadline != .request else { return }
        if responsePending {
            cancelTimer()
        } else {
            arm(.request)
        }
    }

    private func arm(_ kind: Deadline) {
        cancelTimer()
        guard let context, !closing, kind != .none else { return }
        let delay = kind == .idle ? timeouts.idle : timeouts.request
        deadline = kind
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(delay)) { [self] in
            timer = nil
            deadline = .none
            expired(kind)
        }
    }

    private func cancelTimer() {
        timer?.cancel()
        timer = nil
        deadline = .none
    }

    private func expired(_ kind: Deadline) {
        guard let context, !closing else { return }
        switch kind {
        case .none:
            return
        case .idle:
            close(context, answer: false)
        case .request:
            timedOutRequests?.increment()
            if reading == .body {
                // The application is reading this body: its read fails rather than ending
                // early, so a truncated body is never taken for a whole one.
                context.fireErrorCaught(TimedOut())
            }
            // Every earlier request answered in full and nothing of an answer to this one
            // written: the 408 can go out. With no byte of a request, there is nothing to answer.
            let unanswered = responsesBegun == requestsEnded && responsesEnded == responsesBegun
            close(context, answer: reading != .waiting && unanswered)
        }
    }

    /// Writes the 408 when `answer`, then closes: the input first, so the handlers behind see
    /// the requests end as they would if the client had stopped sending, then the connection
    /// (once the 408 is written).
    private func close(_ context: ChannelHandlerContext, answer: Bool) {
        closing = true
        cancelTimer()
        if answer {
            let body = ByteBuffer(bytes: Self.timeoutBody(timeouts.request))
            var head = Self.timeoutHead
            head.headers.replaceOrAdd(name: "Content-Length", value: String(body.readableBytes))
            context.write(Self.wrapOutboundOut(.head(head)), promise: nil)
            context.write(Self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            let written = context.writeAndFlush(Self.wrapOutboundOut(.end(nil)))
            context.close(mode: .input, promise: nil)
            written.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        } else {
            context.close(mode: .input, promise: nil)
            context.close(promise: nil)
        }
    }

    private static var timeoutHead: HTTPResponseHead {
        HTTPResponseHead(version: .http1_1, status: .requestTimeout, headers: [
            "Content-Type": "application/json", "Connection": "close",
        ])
    }

    static func timeoutBody(_ limit: Duration) -> [UInt8] {
        let milliseconds = limit.components.seconds * 1000 + limit.components.attoseconds / 1_000_000_000_000_000
        let shown = milliseconds % 1000 == 0 ? "\(milliseconds / 1000)s" : "\(milliseconds)ms"
        return APIError(.requestTimeout, "request_timeout", "the request did not arrive within \(shown)").body
    }
}

/// The first handler of an HTTP/1 connection's pipeline: tells the ``RequestTimeoutHandler``
/// that bytes arrived, before the decoder sees them, so a request's deadline starts with its
/// first byte rather than with its completed head.
final class RequestBytesWatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    static let name = "tollgate.request-bytes"

    private let handler: RequestTimeoutHandler

    init(_ handler: RequestTimeoutHandler) {
        self.handler = handler
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        handler.bytesArrived()
        context.fireChannelRead(data)
    }
}

@available(*, unavailable)
extension RequestTimeoutHandler: Sendable {}

@available(*, unavailable)
extension RequestBytesWatcher: Sendable {}

/// HTTP/1 with the WebSocket upgrade as Hummingbird sets it up, plus the request deadlines of
/// ``RequestTimeoutHandler``.
///
/// Hummingbird's `additionalChannelHandlers` are added only once the first request's head has
/// arrived and the upgrade has been declined, too late to time that head, and its
/// `idleTimeout` is reset by every part that arrives, so a body sent a byte at a time never
/// trips it. This wraps the channel setup instead and inserts the handler right after the
/// decoder, where it sees every request from the connection's first byte.
struct TimedHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1WebSocketUpgradeChannel.Value

    let base: HTTP1WebSocketUpgradeChannel
    let timeouts: RequestTimeouts
    let timedOutRequests: Metrics.Counter?

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let timeouts = timeouts, counter = timedOutRequests
        return base.setup(channel: channel, logger: logger).flatMapThrowing { value in
            try RequestTimeoutHandler.install(in: channel.pipeline.syncOperations, timeouts: timeouts, timedOutRequests: counter)
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

extension HTTPServerBuilder {
    /// ``TimedHTTP1Channel``: HTTP/1 with the WebSocket upgrade and request deadlines. An
    /// upgrade that `shouldUpgrade` accepts takes the deadlines out first.
    static func timedHTTP1WebSocketUpgrade(
        timeouts: RequestTimeouts, timedOutRequests: Metrics.Counter? = nil,
        shouldUpgrade: @escaping @Sendable (HTTPRequest, any Channel, Logger) async throws
            -> ShouldUpgradeResult<WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>>
    ) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in
            TimedHTTP1Channel(
                base: HTTP1WebSocketUpgradeChannel(
                    responder: responder, configuration: HTTP1WebSocketUpgradeChannel.Configuration(),
                    shouldUpgrade: { request, channel, logger in
                        let result = try await shouldUpgrade(request, channel, logger)
                        if case .upgrade = result { await RequestTimeoutHandler.removeForUpgrade(from: channel) }
                        return result
                    }),
                timeouts: timeouts, timedOutRequests: timedOutRequests)
        }
    }
}
