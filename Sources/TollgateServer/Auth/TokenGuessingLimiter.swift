import Foundation
import HTTPTypes
import Hummingbird
import Synchronization

/// Against guessing tokens: a client (address, as `ClientAddressResolver` sees it) may present
/// at most `maximumFailures` tokens that turn out unknown within `window`; after that it gets
/// 429 `too_many_attempts` for every further token until the window ends, without a lookup in
/// Redis. The admin and service tokens, checked locally, always pass.
///
/// Checking and counting are one step: a presented token takes a slot before it is looked up
/// and gives it back only once it proved known, so parallel guesses cannot all pass the check
/// before any of them is counted. Every way a token is presented goes through here: the
/// `Authorization` bearer token of any route, the gateway's `Tollgate-Service-Token` on
/// `/v1/check` (there `Authorization` carries the end user's API key, a decision about its
/// user, not a guess), and the WebSocket upgrade, which runs before the routes. In memory, per
/// server, bounded.
final class TokenGuessingLimiter: RouterMiddleware, Sendable {
    typealias Context = TollgateRequestContext
    let resolver: ClientAddressResolver
    let maximumFailures: Int
    let window: Duration
    private let state = Mutex([String: Client]())
    static var maximumTrackedClients: Int { 100_000 }

    let auth: Authenticator

    private struct Client {
        var count: Int
        var since: ContinuousClock.Instant
    }

    /// A slot taken by a token being checked; `proved()` gives it back when the token is known.
    struct Attempt: Sendable {
        fileprivate let client: String
        fileprivate let since: ContinuousClock.Instant
    }

    init(resolver: ClientAddressResolver, auth: Authenticator, maximumFailures: Int = 100, window: Duration = .seconds(60)) {
        self.resolver = resolver
        self.auth = auth
        self.maximumFailures = maximumFailures
        self.window = window
    }

    /// The 429 a client at its limit gets.
    var refusal: APIError {
        APIError(.tooManyRequests, "too_many_attempts", "too many unknown tokens from this address; try again later",
                 headers: [.retryAfter: String(window.components.seconds)])
    }

    /// Takes a slot for one token `client` presents, or throws the 429 when it has none left.
    /// The admin and service tokens take none (nil), nor does a client without an address.
    func begin(_ token: String, client: String?) throws(APIError) -> Attempt? {
        guard let client, !auth.isOperatorToken(token) else { return nil }
        let now = ContinuousClock.now
        let since = try state.withLock { clients throws(APIError) -> ContinuousClock.Instant in
            var seen = clients[client] ?? Client(count: 0, since: now)
            if seen.since.duration(to: now) > window { seen = Client(count: 0, since: now) }
            guard seen.count < maximumFailures else { throw refusal }
            if clients[client] == nil, clients.count >= Self.maximumTrackedClients { clients.removeAll() }
            seen.count += 1
            clients[client] = seen
            return seen.since
        }
        return Attempt(client: client, since: since)
    }

    /// The token of `attempt` was known: its slot is given back (within the same window).
    func proved(_ attempt: Attempt?) {
        guard let attempt else { return }
        state.withLock { clients in
            guard var seen = clients[attempt.client], seen.since == attempt.since, seen.count > 0 else { return }
            seen.count -= 1
            clients[attempt.client] = seen
        }
    }

    /// The token a request presents to Tollgate: on `/v1/check` the gateway's service token
    /// header, elsewhere `Authorization` (a bearer token, or the header as sent).
    static func presentedToken(_ request: Request) -> String? {
        // By its segments, as the router matches it: '/v1//check' and '/v1/check/' reach the
        // check route too, and must not pass its service token uncounted.
        if request.uri.path.split(separator: "/").elementsEqual(["v1", "check"]) {
            return request.headers[GatewayRoutes.serviceTokenHeader]
        }
        guard let header = request.headers[.authorization] else { return nil }
        return Authenticator.bearer(header) ?? header
    }

    /// Whether a route's error says the presented token is unknown, by its code: Tollgate's
    /// routes answer `unauthorized`, the OpenAI proxy's routes OpenAI's shape with the key's
    /// denial reason.
    static func isUnknownToken(_ error: any Error) -> Bool {
        switch error {
        case let error as APIError: return error.code == "unauthorized"
        case let error as OpenAIError: return OpenAIError.unknownKeyCodes.contains(error.error.code)
        default: return false
        }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let token = Self.presentedToken(request) else { return try await next(request, context) }
        let attempt = try begin(token, client: resolver.key(request, context))
        let response: Response
        do {
            response = try await next(request, context)
        } catch where Self.isUnknownToken(error) {
            throw error
        } catch {
            proved(attempt)
            throw error
        }
        // /v1/check answers a wrong service token with a 401 response, not an error.
        if response.status != .unauthorized { proved(attempt) }
        return response
    }
}
