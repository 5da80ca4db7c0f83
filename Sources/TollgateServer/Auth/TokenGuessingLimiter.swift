import Foundation
import HTTPTypes
import Hummingbird
import Synchronization

/// Against guessing bearer tokens: a client (address, as `ClientAddressResolver` sees it) that
/// presented `maximumFailures` unknown tokens within `window` gets 429 `too_many_attempts` for
/// every further request with an account token (or any unknown one) until the window ends,
/// without a lookup in Redis; the admin and service tokens, checked locally, still pass. Only
/// bearer-token failures count (401 `unauthorized`): never a gateway's `/v1/check` or an
/// unknown API key, which are decisions about its users. In memory, per server, bounded.
final class TokenGuessingLimiter: RouterMiddleware, Sendable {
    typealias Context = TollgateRequestContext
    let resolver: ClientAddressResolver
    let maximumFailures: Int
    let window: Duration
    private let state = Mutex([String: (count: Int, since: ContinuousClock.Instant)]())
    static var maximumTrackedClients: Int { 100_000 }

    let auth: Authenticator

    init(resolver: ClientAddressResolver, auth: Authenticator, maximumFailures: Int = 100, window: Duration = .seconds(60)) {
        self.resolver = resolver
        self.auth = auth
        self.maximumFailures = maximumFailures
        self.window = window
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.headers[.authorization] != nil, let client = resolver.key(request, context) else {
            return try await next(request, context)
        }
        let now = ContinuousClock.now
        let blocked = state.withLock { clients -> Bool in
            guard let seen = clients[client] else { return false }
            if seen.since.duration(to: now) > window {
                clients[client] = nil
                return false
            }
            return seen.count >= maximumFailures
        }
        if blocked, !auth.isOperatorToken(Authenticator.bearer(request.headers[.authorization]) ?? "") {
            throw APIError(.tooManyRequests, "too_many_attempts", "too many unknown tokens from this address; try again later",
                           headers: [.retryAfter: String(window.components.seconds)])
        }
        do {
            return try await next(request, context)
        } catch let error as APIError where error.code == "unauthorized" {
            state.withLock { clients in
                if clients.count >= Self.maximumTrackedClients { clients.removeAll() }
                var seen = clients[client] ?? (0, now)
                if seen.since.duration(to: now) > window { seen = (0, now) }
                seen.count += 1
                clients[client] = seen
            }
            throw error
        }
    }
}
