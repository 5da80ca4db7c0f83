import TollgateCore

/// Who may call a route. Every route states it where it is registered (`RouteTable`), and
/// `AccessMiddleware` enforces it before the handler runs, so a route cannot forget it.
public enum Access: Sendable, Hashable, CustomStringConvertible {
    /// Anyone, with or without a token: liveness, readiness, metrics, the API document and the
    /// dashboard's files.
    case open
    /// Any known bearer token: the admin's, the service's, or any account's.
    case anyToken
    /// The admin token only.
    case admin
    /// The service token only (a gateway).
    case service
    /// The admin, or the token of the account the path's `:id` names.
    case adminOrOwner
    /// As `adminOrOwner`, and an account token's calls count against its quota
    /// (`AccountTokenQuota`): the routes that read much of Redis or leave state behind.
    case adminOrOwnerMetered
    /// A credential of the route's own, which no bearer token stands in for; the route checks it.
    case routeCredential(RouteCredential)

    /// Whether `caller` may call a route with this rule, for the account the path names.
    /// Open routes and routes with their own credential do not look at bearer tokens: false.
    func admits(_ caller: Caller, pathAccount: AccountID?) -> Bool {
        switch self {
        case .open, .routeCredential: return false
        case .anyToken: return true
        case .admin: return caller == .admin
        case .service: return caller == .service
        case .adminOrOwner, .adminOrOwnerMetered:
            return caller == .admin || (pathAccount.map { caller == .account($0) } ?? false)
        }
    }

    public var description: String {
        switch self {
        case .open: return "open"
        case .anyToken: return "any token"
        case .admin: return "admin"
        case .service: return "service"
        case .adminOrOwner: return "admin or the account's token"
        case .adminOrOwnerMetered: return "admin or the account's token (metered)"
        case .routeCredential(let credential): return credential.rawValue
        }
    }
}

/// The credentials that routes check themselves, in place of a bearer token.
public enum RouteCredential: String, Sendable, Hashable {
    /// A payment provider's signature over the webhook's body.
    case providerSignature = "provider signature"
    /// `/v1/check`'s `Tollgate-Service-Token` header (`Authorization` carries the end user's key).
    case serviceTokenHeader = "Tollgate-Service-Token header"
    /// An account's API key as the bearer token (the OpenAI proxy).
    case apiKey = "API key"
}
