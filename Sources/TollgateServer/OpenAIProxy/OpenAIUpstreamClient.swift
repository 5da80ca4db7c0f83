import AsyncHTTPClient
import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
import ServiceLifecycle

/// The HTTP client the proxy calls upstreams with (AsyncHTTPClient): pools of keep-alive
/// connections, no redirects, bodies relayed as they come. A `Service`: run it in the server's
/// `ServiceGroup` before the HTTP server, so it closes after the last proxied call.
///
/// An answer read whole has the upstream timeout as its read timeout (before the head and
/// between body reads). A stream's has it only before the head: AsyncHTTPClient's read timer
/// also runs while the proxy, held up writing to a slow client or deciding a batch, does not
/// ask for more, so between a stream's reads the relay times only its own waits on the
/// upstream (`UpstreamWait`).
public final class OpenAIUpstreamClient: Service, Sendable {
    private let http: HTTPClient
    private let streamingHTTP: HTTPClient
    private let timeout: Duration

    /// Connections per upstream host kept open at once: one per stream in flight (a stream
    /// holds its connection for its whole answer).
    static let connectionsPerHost = 4096
    static let connectTimeout: Duration = .seconds(10)

    public init(timeout: Duration) {
        func client(readTimeout: Duration?) -> HTTPClient {
            var configuration = HTTPClient.Configuration(
                redirectConfiguration: .disallow,
                timeout: .init(connect: .init(Self.connectTimeout), read: readTimeout.map { .init($0) }),
                connectionPool: .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: Self.connectionsPerHost),
                decompression: .disabled)
            configuration.httpVersion = .http1Only
            return HTTPClient(configuration: configuration)
        }
        self.timeout = timeout
        http = client(readTimeout: timeout)
        streamingHTTP = client(readTimeout: nil)
    }

    public func run() async throws {
        try? await gracefulShutdown()
        try await shutdown()
    }

    /// Closes the client's connections; for a client never run as a service.
    public func shutdown() async throws {
        try await http.shutdown()
        try await streamingHTTP.shutdown()
    }

    /// Sends one call upstream and returns once its head is in; the body is read from the
    /// response as it arrives. Cancelling the task, or dropping the body unread, closes the
    /// upstream request. A streamed body has no read timeout of its own (see the type's
    /// comment): its reader times its waits.
    func send(_ method: HTTPMethod, _ url: String, key: String?, body: [UInt8]?, streaming: Bool) async throws(UpstreamFailure) -> HTTPClientResponse {
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "Accept", value: streaming ? "text/event-stream" : "application/json")
        if let key { request.headers.add(name: "Authorization", value: "Bearer \(key)") }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        do {
            // The deadline bounds the wait for the head only (the stream's has no read timer).
            return streaming
                ? try await streamingHTTP.execute(request, deadline: .now() + TimeAmount(timeout))
                : try await http.execute(request, deadline: .distantFuture)
        } catch {
            throw UpstreamFailure(error)
        }
    }
}

/// Why an upstream call failed, by the client's error code.
enum UpstreamFailure: Error, Sendable, Equatable {
    /// No answer (or no more of it) within the upstream timeout.
    case timedOut
    /// The task was cancelled (the client left).
    case cancelled
    /// The connection could not be made, or broke.
    case unreachable(String)

    init(_ error: any Error) {
        if let client = error as? HTTPClientError {
            switch client {
            case .readTimeout, .connectTimeout, .deadlineExceeded: self = .timedOut
            case .cancelled: self = .cancelled
            default: self = .unreachable(client.description)
            }
        } else if error is CancellationError {
            self = .cancelled
        } else {
            self = .unreachable(String(describing: error).prefix(200).description)
        }
    }

    /// The client's answer for a failure before any of the upstream's answer was relayed.
    var answer: OpenAIError {
        switch self {
        case .timedOut: return .upstreamTimedOut
        case .cancelled, .unreachable: return .upstreamUnreachable
        }
    }

    var description: String {
        switch self {
        case .timedOut: return "timed out"
        case .cancelled: return "cancelled"
        case .unreachable(let detail): return detail
        }
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
