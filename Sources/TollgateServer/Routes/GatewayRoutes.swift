import Foundation
import HTTPTypes
import Hummingbird
import TollgateCore

/// What gateways call (service token): `/v1/authorize`, hold follow-ups, and `/v1/check` for
/// nginx `auth_request` (Envoy `ext_authz` is not supported: it appends the client's path).
struct GatewayRoutes: Sendable {
    let engine: Engine
    let metrics: ServerMetrics
    /// The status of a denied `/v1/check` other than an unknown or revoked key (403 by default).
    let denyStatus: HTTPResponse.Status
    /// The service token's digest, computed once: `/v1/check` compares against it per request.
    private let serviceDigest: [UInt8]
    /// `--fail-open`: where calls allowed without Redis are journaled; nil fails closed.
    let failOpen: FailOpenJournal?

    init(engine: Engine, metrics: ServerMetrics, denyStatus: HTTPResponse.Status, serviceToken: String,
         failOpen: FailOpenJournal? = nil) {
        self.failOpen = failOpen
        self.engine = engine
        self.metrics = metrics
        self.denyStatus = denyStatus
        self.serviceDigest = Array(APIKeySecret.hash(serviceToken).utf8)
    }

    func register(on routes: RouteTable) {
        routes.post("/v1/authorize", .service) { request, _ in try await authorize(request) }
        routes.post("/v1/holds/:hold_id/report", .service) { request, context in try await followUp(request, context, .report) }
        routes.post("/v1/holds/:hold_id/settle", .service) { request, context in try await followUp(request, context, .settle) }
        routes.post("/v1/holds/:hold_id/release", .service) { request, context in try await followUp(request, context, .release) }
        routes.get("/v1/check", .routeCredential(.serviceTokenHeader)) { request, _ in try await check(request) }
    }

    private func decided(_ start: ContinuousClock.Instant, _ body: () async throws(TollgateError) -> Decision) async throws -> Response {
        do {
            let decision = try await body()
            metrics.record(decision, since: start)
            return JSON.response(decision)
        } catch {
            if error.code == .redisUnavailable { metrics.recordRedisError(error) }
            throw APIError(error)
        }
    }

    private func authorize(_ request: Request) async throws -> Response {
        let start = ContinuousClock.now
        let body = try await JSON.decode(AuthorizeBody.self, from: request)
        let target: AuthorizeTarget
        switch (body.key, body.account) {
        case (let key?, nil): target = .key(secret: key)
        case (nil, let account?): target = .account(try apiCall { () throws(TollgateError) in try AccountID(account) })
        default: throw APIError.badRequest("give exactly one of 'key' and 'account'")
        }
        let mode: AuthorizeMode
        switch body.mode ?? "debit" {
        case "debit":
            guard body.ttl_ms == nil else { throw APIError.badRequest("'ttl_ms' goes with mode 'hold'") }
            mode = .debit
        case "hold": mode = .hold(ttl: .milliseconds(body.ttl_ms ?? 30_000))
        default: throw APIError.badRequest("'mode' is 'debit' or 'hold'")
        }
        let usage = try apiCall { () throws(TollgateError) in try UsageBody.items(body.usage) }
        let requestID = try apiCall { () throws(TollgateError) in try RequestID(body.request_id) }
        do {
            let decision = try await engine.authorize(target, usage: usage, requestID: requestID, mode: mode)
            metrics.record(decision, since: start)
            return JSON.response(decision)
        } catch {
            if error.code == .redisUnavailable {
                metrics.recordRedisError(error)
                if mode == .debit, journaled(target, usage, requestID) {
                    return JSON.response(Decision.allowedWithoutRedis, headers: [Self.failOpenHeader: "1"])
                }
                voidUnjournaled(target, requestID)
            }
            throw APIError(error)
        }
    }

    static let failOpenHeader = HTTPField.Name("Tollgate-Fail-Open")!
    /// How a gateway authenticates to `/v1/check` (`Authorization` carries its user's key).
    static let serviceTokenHeader = HTTPField.Name("Tollgate-Service-Token")!

    /// With `--fail-open`, journals a call Redis could not decide so it can be allowed; false
    /// when it must fail closed (no fail-open, journal full, or a key this server never saw).
    private func journaled(_ target: AuthorizeTarget, _ usage: [UsageItem], _ requestID: TollgateCore.RequestID) -> Bool {
        guard let failOpen else { return false }
        let account: AccountID
        var keyID = ""
        switch target {
        case .account(let id): account = id
        case .key(let secret):
            guard let known = engine.cachedKey(secret: secret) else { return false }
            account = known.account
            keyID = known.key.rawValue
        }
        let entry = FailOpenJournal.Entry(account: account, keyID: keyID, usage: usage, requestID: requestID,
                                          time: engine.clock.nowMilliseconds())
        guard failOpen.append(entry) else { return false }
        metrics.recordFailOpen()
        return true
    }

    /// With `--fail-open` the engine leaves unanswered decisions to the journal; one that could
    /// not be journaled (the journal full, a hold) is answered 503, so it must be voided as
    /// without `--fail-open`. A key this server never resolved was never sent: nothing to void.
    private func voidUnjournaled(_ target: AuthorizeTarget, _ requestID: TollgateCore.RequestID) {
        guard failOpen != nil else { return }
        switch target {
        case .account(let id): engine.voidLater(id, requestID: requestID)
        case .key(let secret):
            if let known = engine.cachedKey(secret: secret) { engine.voidLater(known.account, requestID: requestID) }
        }
    }

    private enum FollowUp { case report, settle, release }

    private func followUp(_ request: Request, _ context: some RequestContext, _ kind: FollowUp) async throws -> Response {
        let start = ContinuousClock.now
        let hold = try PathParameter.hold(context)
        let body = try await JSON.decode(HoldFollowUpBody.self, from: request)
        let usage = try apiCall { () throws(TollgateError) in try body.usage.map { (list) throws(TollgateError) in try UsageBody.items(list) } }
        let requestID = try apiCall { () throws(TollgateError) in
            try RequestID(body.request_id ?? (kind == .release ? "release:\(hold)" : ""))
        }
        switch kind {
        case .report:
            guard let usage else { throw APIError.badRequest("missing field 'usage'") }
            return try await decided(start) { () async throws(TollgateError) in try await engine.report(hold, usage: usage, requestID: requestID) }
        case .settle:
            return try await decided(start) { () async throws(TollgateError) in try await engine.settle(hold, usage: usage, requestID: requestID) }
        case .release:
            guard usage == nil else { throw APIError.badRequest("a release takes no usage; settle instead") }
            return try await decided(start) { () async throws(TollgateError) in try await engine.release(hold, requestID: requestID) }
        }
    }

    /// nginx `auth_request`: status and headers carry the decision.
    private func check(_ request: Request) async throws -> Response {
        let start = ContinuousClock.now
        let presented = Array(APIKeySecret.hash(request.headers[Self.serviceTokenHeader] ?? "").utf8)
        guard Authenticator.constantTimeEquals(presented, serviceDigest) else {
            return Self.checkResponse(.unauthorized, reason: "invalid_service_token")
        }
        guard let secret = request.headers[HTTPField.Name("X-Api-Key")!] ?? Authenticator.bearer(request.headers[.authorization]) else {
            return Self.checkResponse(.unauthorized, reason: "missing_key")
        }
        let usage = try Self.checkUsage(request.uri.queryParameters.getAll("usage"))
        let requestID = try apiCall { () throws(TollgateError) in
            try RequestID(request.headers[HTTPField.Name("X-Request-Id")!] ?? "check-" + UUID().uuidString)
        }
        let decision: Decision
        do {
            decision = try await engine.authorize(.key(secret: secret), usage: usage, requestID: requestID)
        } catch {
            if error.code == .redisUnavailable {
                metrics.recordRedisError(error)
                if journaled(AuthorizeTarget.key(secret: secret), usage, requestID) {
                    return Response(status: .ok, headers: [Self.failOpenHeader: "1"])
                }
                voidUnjournaled(.key(secret: secret), requestID)
            }
            var failure = APIError(error)
            failure.headers[HTTPField.Name("X-Tollgate-Reason")!] = failure.code
            throw failure
        }
        metrics.record(decision, since: start)
        var headers = HTTPFields()
        if let account = decision.account {
            headers[HTTPField.Name("X-Tollgate-Account")!] = account.id.rawValue.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
            headers[HTTPField.Name("X-Tollgate-Balance")!] = account.balance.description
        }
        if let tightest = decision.limits.filter({ [.rps, .rpm, .rph].contains($0.name) }).min(by: { $0.remaining < $1.remaining }) {
            headers[HTTPField.Name("RateLimit-Limit")!] = String(tightest.limit)
            headers[HTTPField.Name("RateLimit-Remaining")!] = String(tightest.remaining)
            headers[HTTPField.Name("RateLimit-Reset")!] = String((tightest.resetMilliseconds + 999) / 1000)
        }
        guard decision.allowed else {
            let reason = decision.reason?.rawValue ?? "denied"
            let status: HTTPResponse.Status = [.unknownKey, .keyRevoked].contains(decision.reason) ? .unauthorized : denyStatus
            if let retry = decision.retryAfterMilliseconds { headers[.retryAfter] = String((retry + 999) / 1000) }
            return Self.checkResponse(status, reason: reason, headers: headers)
        }
        return Response(status: .ok, headers: headers)
    }

    /// What a check charges: the `usage` query parameter of the check URL, else one `api_call`.
    ///
    /// The usage is the operator's, never the caller's: it is written into the gateway's
    /// configuration (nginx's `proxy_pass` URL of the `auth_request` location, whose subrequest
    /// carries no query of the client's), and no request header is read for it, so nothing a
    /// client sends can change what its call costs. Twice the parameter is refused rather than
    /// guessed at.
    static func checkUsage(_ given: [String]) throws -> [UsageItem] {
        guard given.count <= 1 else { throw APIError.badRequest("give the check's 'usage' once") }
        guard let text = given.first else { return defaultCheckUsage }
        return try apiCall { () throws(TollgateError) in try UsageItem.parseList(text) }
    }

    /// What a check charges when its URL names no usage, built once rather than parsed per call.
    static let defaultCheckUsage = [try! UsageItem(meter: "api_call", quantity: 1)]

    private static func checkResponse(_ status: HTTPResponse.Status, reason: String, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[HTTPField.Name("X-Tollgate-Reason")!] = reason
        return Response(status: status, headers: fields)
    }
}

/// Runs a throwing engine-side conversion, turning its error into a 4xx.
func apiCall<T>(_ body: () throws(TollgateError) -> T) throws -> T {
    do {
        return try body()
    } catch {
        throw APIError(error)
    }
}
