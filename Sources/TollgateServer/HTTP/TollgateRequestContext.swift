import Hummingbird
import NIOCore

/// The request context of every route: Hummingbird's basics, the peer's address (which counts
/// failed coupon attempts per client, against guessing) and the caller the route's `Access` admitted.
public struct TollgateRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?
    /// Who is calling, as `AccessMiddleware` admitted them; nil on routes that take no bearer
    /// token (`Access.open`, `Access.routeCredential`).
    public internal(set) var caller: Caller?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }

    /// The admitted caller; for a route whose `Access` takes a bearer token, always set.
    func requireCaller() throws -> Caller {
        guard let caller else { throw APIError.unauthorized }
        return caller
    }

    /// The client's IP address as text, without the port.
    var clientAddress: String? { remoteAddress?.ipAddress }
}
