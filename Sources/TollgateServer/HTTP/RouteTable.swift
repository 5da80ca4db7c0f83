import HTTPTypes
import Hummingbird

/// The router as route files see it: each route is registered with the `Access` that says who
/// may call it, enforced by `AccessMiddleware` before the handler runs. What was registered is
/// kept, for `TollgateHTTPServer.routes` and the authorization tests.
final class RouteTable {
    private let router: Router<TollgateRequestContext>
    private let auth: Authenticator
    private(set) var rules: [RouteKey: Access] = [:]

    /// A route as the router knows it: its method and its path template (`/v1/accounts/{id}`).
    struct RouteKey: Hashable {
        let method: String
        let path: String
    }

    init(router: Router<TollgateRequestContext>, auth: Authenticator) {
        self.router = router
        self.auth = auth
    }

    func on(_ method: HTTPRequest.Method, _ path: RouterPath, _ access: Access,
            use handler: @Sendable @escaping (Request, TollgateRequestContext) async throws -> some ResponseGenerator) {
        switch access {
        case .open, .routeCredential:
            // Nothing to check before the handler: no middleware on the way.
            router.on(path, method: method, use: handler)
        default:
            router.group().add(middleware: AccessMiddleware(access: access, auth: auth)).on(path, method: method, use: handler)
        }
        rules[RouteKey(method: method.rawValue, path: path.description)] = access
    }

    func get(_ path: RouterPath, _ access: Access,
             use handler: @Sendable @escaping (Request, TollgateRequestContext) async throws -> some ResponseGenerator) {
        on(.get, path, access, use: handler)
    }

    func post(_ path: RouterPath, _ access: Access,
              use handler: @Sendable @escaping (Request, TollgateRequestContext) async throws -> some ResponseGenerator) {
        on(.post, path, access, use: handler)
    }

    func put(_ path: RouterPath, _ access: Access,
             use handler: @Sendable @escaping (Request, TollgateRequestContext) async throws -> some ResponseGenerator) {
        on(.put, path, access, use: handler)
    }

    func delete(_ path: RouterPath, _ access: Access,
                use handler: @Sendable @escaping (Request, TollgateRequestContext) async throws -> some ResponseGenerator) {
        on(.delete, path, access, use: handler)
    }

    /// Every route the router serves, with its rule; nil for one registered on the router
    /// without going through this table (which a test refuses).
    static func served(by router: Router<TollgateRequestContext>, rules: [RouteKey: Access]) -> [ServedRoute] {
        router.routes.map { route in
            let key = RouteKey(method: route.method.rawValue, path: route.path.description)
            return ServedRoute(method: key.method, path: key.path, access: rules[key])
        }
    }
}

/// A route the server answers and who may call it.
public struct ServedRoute: Sendable, Hashable, CustomStringConvertible {
    public let method: String
    /// The path template, parameters in braces: `/v1/accounts/{id}`.
    public let path: String
    /// Who may call it; nil if it was registered without a rule.
    public let access: Access?

    public var description: String { "\(method) \(path)" }
}
