import Foundation
import Synchronization
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import TollgateCore

/// The live streams: one account's events over SSE and WebSocket, the operators' firehose,
/// and the low-balance alert setting.
struct EventRoutes: Sendable {
    let engine: Engine
    let hub: EventHub

    func register(on routes: RouteTable) {
        routes.get("/v1/accounts/:id/events", Self.streamAccess) { request, context in
            let caller = try context.requireCaller()
            let id = try PathParameter.account(context)
            _ = try await engineCall { () async throws(TollgateError) in try await engine.snapshot(id) }  // 404 before streaming
            let permit = try streamPermit(for: caller)
            let resume = request.headers[HTTPField.Name("Last-Event-ID")!] ?? request.uri.queryParameters["last_event_id"].map(String.init)
            let session = AccountEventSession(engine: engine, hub: hub, account: id, resumeFrom: resume)
            let check = tokenCheck(caller, Authenticator.bearer(request.headers[.authorization]))
            return sseResponse(request, permit: permit, filter: .init(account: id), tokenCheck: check) { subscription, send in
                try await session.run(subscription, send: send)
            }
        }
        routes.get("/v1/events", .admin) { request, context in
            let caller = try context.requireCaller()
            let query = request.uri.queryParameters
            let kinds = Set((query["kind"].map(String.init) ?? "").split(separator: ",").map { String($0) })
            let known = Set(LedgerKind.allCases.map(\.rawValue) + ["alert"])
            guard kinds.isSubset(of: known) else {
                throw APIError.badRequest("'kind' is a comma-separated list of: \(known.sorted().joined(separator: ", "))")
            }
            let filter = EventHub.Filter(account: nil, accountPrefix: query["account_prefix"].map(String.init) ?? "", kinds: kinds)
            let permit = try streamPermit(for: caller)
            return sseResponse(request, permit: permit, filter: filter) { subscription, send in
                try await FirehoseSession(hub: hub).run(subscription, send: send)
            }
        }
        // A plain GET here is not a WebSocket upgrade: say what is wrong, after checking the caller.
        routes.get("/v1/accounts/:id/ws", Self.streamAccess) { request, context -> Response in
            let caller = try context.requireCaller()
            // An upgrade refused only because the caller is at its stream limit: say so.
            if request.headers[.upgrade]?.lowercased() == "websocket" {
                _ = try streamPermit(for: caller)
            }
            throw APIError(.badRequest, "websocket_required", "this route needs a WebSocket upgrade (Connection: Upgrade, Upgrade: websocket)")
        }
        routes.put("/v1/accounts/:id/alerts", .adminOrOwner) { request, context in
            let id = try PathParameter.account(context)
            let body = try await JSON.decode(AlertsBody.self, from: request)
            let threshold = try apiCall { () throws(TollgateError) -> Money? in
                guard let text = body.low_balance else { return nil }
                return try Money(parsing: text)
            }
            let alert = try await engineCall { () async throws(TollgateError) in try await engine.setLowBalanceAlert(id, threshold: threshold) }
            return JSON.response(AlertsView(low_balance_alert: alert))
        }
    }

    /// Who may follow an account's events, over SSE and WebSocket alike.
    static let streamAccess = Access.adminOrOwner

    /// A slot for one more stream of `caller`, or the 429 that refuses it.
    private func streamPermit(for caller: Caller) throws -> StreamLimiter.Permit {
        do {
            return try hub.streamLimits.acquire(for: caller)
        } catch {
            throw error.apiError
        }
    }

    /// For a stream opened with an account token: whether that token still stands. A lookup
    /// that fails (Redis unreachable) is no revocation; the stream carries on.
    private func tokenCheck(_ caller: Caller, _ token: String?) -> (@Sendable () async -> Bool)? {
        guard case .account(let id) = caller, let token else { return nil }
        let engine = self.engine
        let failingSince = Mutex<ContinuousClock.Instant?>(nil)
        return {
            do {
                let valid = try await engine.account(forToken: token) == id
                failingSince.withLock { $0 = nil }
                return valid
            } catch {
                // Redis cannot say: a blip does not cut the stream, but a revocation must not
                // go unnoticed for longer than the grace.
                let now = ContinuousClock.now
                let since = failingSince.withLock { since in
                    if since == nil { since = now }
                    return since!
                }
                return since.duration(to: now) < Self.tokenCheckGrace
            }
        }
    }

    /// How long a stream of an account token goes on while its token cannot be checked.
    static let tokenCheckGrace: Duration = .seconds(10)

    /// A `text/event-stream` response running `session` until the client leaves or lags, or
    /// the account token it was opened with is revoked (`tokenCheck`).
    ///
    /// The subscription is made only once the body runs (a connection that goes before that
    /// leaves nothing behind; the permit then gives itself back when the response is freed),
    /// and the request's inbound side is watched: Hummingbird does not cancel a response body
    /// when the client closes the connection, so without this a gone client would be noticed
    /// only at the next write (up to a heartbeat later). Its closing cancels the session, which
    /// ends the subscription and frees its slot at once.
    private func sseResponse(
        _ request: Request, permit: StreamLimiter.Permit, filter: EventHub.Filter,
        tokenCheck: (@Sendable () async -> Bool)? = nil,
        _ session: @escaping @Sendable (EventHub.Subscription, (StreamMessage) async throws -> Void) async throws -> Void
    ) -> Response {
        let headers = EventStreamHeaders.fields
        let hub = self.hub
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            defer { permit.release() }
            let subscription = hub.subscribe(filter)
            defer { subscription.cancel() }
            let out = WriterBox(writer)
            try await request.body.consumeWithCancellationOnInboundClose { _ in
                try await endingWhenRevoked(every: Engine.accountTokenRecheckInterval, tokenCheck) {
                    try await cuttingOffLaggards(subscription) {
                        try await session(subscription) { message in try await out.writer.write(message.sse) }
                    }
                }
            }
            // A lagging subscriber has had its notice; the connection goes (throwing is how a
            // response body closes it: HTTP/1.1 would otherwise keep it open for more requests).
            if subscription.lagged { throw SubscriberLagged() }
            try await out.writer.finish(nil)
        })
    }

    /// The caller of an upgrade's token, looked up only within the guessing limit (nil when
    /// the client is at it, or the token is unknown). A known token gives its slot back; an
    /// unknown one stays counted, as for any route (a refused upgrade never reaches them).
    private static func lookUp(_ token: String, headers: HTTPFields, peer: String?, auth: Authenticator,
                               guessing: TokenGuessingLimiter) async -> Caller? {
        let attempt: TokenGuessingLimiter.Attempt?
        do {
            attempt = try guessing.begin(token, client: guessing.resolver.key(headers: headers, peer: peer))
        } catch {
            return nil
        }
        let caller: Caller?
        do {
            caller = try await auth.caller(token: token)
        } catch {
            // Redis could not say: no proof of a wrong token, so the slot is given back.
            guessing.proved(attempt)
            return nil
        }
        if caller != nil { guessing.proved(attempt) }
        return caller
    }

    /// The WebSocket upgrade for `/v1/accounts/{id}/ws`: the same stream as the SSE route,
    /// one JSON text message per event. Authenticated by `Authorization: Bearer`; resumes
    /// from `?last_event_id=`. A request that is no complete upgrade reaches the HTTP routes; an
    /// upgrade refused here (unknown token, another account, at a limit) is answered 400 by
    /// the HTTP layer, without a body.
    static func webSocketUpgrade(
        engine: Engine, auth: Authenticator, hub: EventHub, guessing: TokenGuessingLimiter
    ) -> @Sendable (HTTPRequest, any Channel, Logger) async throws -> ShouldUpgradeResult<WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>> {
        let routes = EventRoutes(engine: engine, hub: hub)
        return { request, channel, _ in
            guard let target = request.path, let components = URLComponents(string: target) else { return .dontUpgrade }
            let parts = components.percentEncodedPath.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 5, parts[0].isEmpty, parts[1] == "v1", parts[2] == "accounts", parts[4] == "ws",
                  let raw = String(parts[3]).removingPercentEncoding,
                  !raw.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }),
                  let id = try? AccountID(raw),
                  let token = Authenticator.bearer(request.headerFields[.authorization]),
                  // The guessing limit before the lookup.
                  let caller = await Self.lookUp(token, headers: request.headerFields, peer: channel.remoteAddress?.ipAddress,
                                                 auth: auth, guessing: guessing),
                  Self.streamAccess.admits(caller, pathAccount: id),
                  (try? await engine.snapshot(id)) != nil,
                  // At its stream limit, the upgrade is refused.
                  let permit = try? hub.streamLimits.acquire(for: caller)
            else { return .dontUpgrade }
            let resume = components.queryItems?.first { $0.name == "last_event_id" }?.value
            let session = AccountEventSession(engine: engine, hub: hub, account: id, resumeFrom: resume)
            let check = routes.tokenCheck(caller, token)
            return .upgrade([:]) { inbound, outbound, _ in
                defer { permit.release() }
                let subscription = hub.subscribe(.init(account: id))
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        try await endingWhenRevoked(every: Engine.accountTokenRecheckInterval, check) {
                            try await cuttingOffLaggards(subscription) {
                                try await session.run(subscription) { message in
                                    try await outbound.write(.text(String(decoding: message.json, as: UTF8.self)))
                                }
                            }
                        }
                    }
                    // The client closing (or sending anything and closing) ends the session.
                    group.addTask { for try await _ in inbound {} }
                    defer { group.cancelAll() }
                    do {
                        try await group.next()
                    } catch is SubscriberLagged {
                        channel.close(promise: nil)
                    } catch is StreamTokenRevoked {
                        channel.close(promise: nil)
                    }
                }
            }
        }
    }
}

/// Holds a response body writer so a child task can write with it; one task at a time.
private final class WriterBox: @unchecked Sendable {
    var writer: any ResponseBodyWriter
    init(_ writer: any ResponseBodyWriter) { self.writer = writer }
}

/// `PUT /v1/accounts/{id}/alerts`: `{"low_balance": "5"}` (or null to clear).
struct AlertsBody: StrictDecodable {
    static let fields: Set<String> = ["low_balance"]
    let low_balance: String?
}

struct AlertsView: Encodable {
    let low_balance_alert: LowBalanceAlert?

    enum CodingKeys: String, CodingKey { case low_balance_alert }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(low_balance_alert, forKey: .low_balance_alert)
    }
}
