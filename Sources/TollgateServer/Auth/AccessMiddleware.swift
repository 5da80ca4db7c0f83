import Hummingbird
import TollgateCore

/// Enforces a route's `Access` before its handler: 401 without a known bearer token, 403 for a
/// caller the rule does not admit. The admitted caller reaches the handler in `context.caller`.
struct AccessMiddleware: RouterMiddleware {
    typealias Context = TollgateRequestContext

    let access: Access
    let auth: Authenticator

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.caller = try await auth.admit(request, context, to: access)
        return try await next(request, context)
    }
}
