import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import TollgateCore

/// A running `tollgate serve`, over HTTP/1.1 keep-alive: one connection per worker, one request
/// in flight on each, as a gateway's connection pool would do. Built on SwiftNIO (non-blocking:
/// nothing waits on the cooperative pool), which Hummingbird already brings in.
public struct HTTPTarget: LoadTarget {
    /// Host name or address.
    public let host: String
    /// TCP port.
    public let port: Int
    /// The service token (gateway calls).
    public let serviceToken: String
    /// The admin token (set-up, ledger, audit); nil allows only gateway calls.
    public let adminToken: String?
    /// How long one request may take before it counts as an error and its connection is dropped.
    public let timeout: Duration
    public var address: String { "http://\(host):\(port)" }

    /// A target for `url` (`http://HOST[:PORT]`).
    public init(url: String, serviceToken: String, adminToken: String?, timeout: Duration = .seconds(5)) throws(LoadTestError) {
        guard let components = URLComponents(string: url), components.scheme == "http", let host = components.host, !host.isEmpty,
              components.path.isEmpty || components.path == "/", components.query == nil else {
            throw LoadTestError(.invalidConfiguration, "'\(url)' is not a server address like http://127.0.0.1:8080")
        }
        guard !serviceToken.isEmpty else { throw LoadTestError(.invalidConfiguration, "the service token is empty") }
        self.host = host
        self.port = components.port ?? 80
        self.serviceToken = serviceToken
        self.adminToken = adminToken
        self.timeout = timeout
    }

    public func withSession<Result: Sendable>(
        _ body: (any LoadSession) async throws(LoadTestError) -> Result
    ) async throws(LoadTestError) -> Result {
        // The first connection is made here, so an unreachable server is an error of the
        // session; later breaks are mended by the session itself (it reconnects).
        let session = HTTPSession(target: self, channel: try await connect())
        defer { session.close() }
        return try await body(session)
    }

    /// A new keep-alive connection.
    func connect() async throws(LoadTestError) -> any Channel {
        do {
            return try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connectTimeout(.seconds(Int64(max(1, timeout.wholeSeconds))))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(ExchangeHandler())
                    }
                }
                .connect(host: host, port: port).get()
        } catch {
            throw LoadTestError(.unreachable, "cannot connect to \(address): \(error)")
        }
    }

    public func shutdown() async {}
}

extension Duration {
    var wholeSeconds: Int64 { components.seconds }
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}

/// One request and the promise of its answer, written to an `ExchangeHandler`.
struct Exchange: Sendable {
    let parts: [HTTPClientRequestPart]
    let answer: EventLoopPromise<(status: Int, body: ByteBuffer)>
}

/// Writes a request and collects its answer (one in flight at a time); fails the pending
/// answer when the connection errs or closes.
final class ExchangeHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = Exchange
    typealias OutboundOut = HTTPClientRequestPart

    private var pending: EventLoopPromise<(status: Int, body: ByteBuffer)>?
    private var status = 0
    private var body = ByteBuffer()

    struct ConnectionClosed: Error, CustomStringConvertible {
        var description: String { "the connection closed" }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let exchange = unwrapOutboundIn(data)
        pending?.fail(ConnectionClosed())
        pending = exchange.answer
        status = 0
        body.clear()
        for (index, part) in exchange.parts.enumerated() {
            context.write(wrapOutboundOut(part), promise: index == exchange.parts.count - 1 ? promise : nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): status = Int(head.status.code)
        case .body(var chunk): body.writeBuffer(&chunk)
        case .end:
            let answer = (status: status, body: body)
            body = ByteBuffer()
            pending.take()?.succeed(answer)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        pending.take()?.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        pending.take()?.fail(ConnectionClosed())
        context.fireChannelInactive()
    }
}

private extension Optional {
    mutating func take() -> Wrapped? {
        defer { self = nil }
        return self
    }
}

/// One keep-alive connection at a time: a request, then its answer, then the next. When the
/// connection breaks (a timeout, the server closing it or going away), the failed request is
/// an error and the next one reconnects, after a short backoff while reconnecting keeps failing.
final class HTTPSession: LoadSession {
    private let target: HTTPTarget
    private var channel: (any Channel)?
    /// Reconnections that failed in a row (the backoff grows with them).
    private var failedConnects = 0

    /// The first wait before reconnecting after a failed attempt, and the longest.
    static let backoff = (first: Duration.milliseconds(10), longest: Duration.milliseconds(500))

    init(target: HTTPTarget, channel: any Channel) {
        self.target = target
        self.channel = channel
    }

    /// Closes the connection.
    func close() {
        channel?.close(promise: nil)
        channel = nil
    }

    /// The open connection, or a new one.
    private func connection() async throws(LoadTestError) -> any Channel {
        if let channel, channel.isActive { return channel }
        close()
        if failedConnects > 0 {
            var wait = Self.backoff.first
            for _ in 1..<min(failedConnects, 8) { wait *= 2 }
            try? await Task.sleep(for: min(wait, Self.backoff.longest))
        }
        do throws(LoadTestError) {
            let channel = try await target.connect()
            failedConnects = 0
            self.channel = channel
            return channel
        } catch {
            failedConnects += 1
            throw LoadTestError(.requestFailed, "reconnecting: \(error.message)")
        }
    }

    private enum Token { case service, admin }

    /// Sends one request and reads its whole answer.
    private func send(_ method: HTTPMethod, _ path: String, _ token: Token, body: String? = nil) async throws(LoadTestError) -> (status: Int, body: ByteBuffer) {
        let bearer: String
        switch token {
        case .service: bearer = target.serviceToken
        case .admin:
            guard let admin = target.adminToken else {
                throw LoadTestError(.invalidConfiguration, "this needs the admin token (--admin-token or TOLLGATE_ADMIN_TOKEN)")
            }
            bearer = admin
        }
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: path)
        head.headers.add(name: "Host", value: "\(target.host):\(target.port)")
        head.headers.add(name: "Authorization", value: "Bearer \(bearer)")
        var parts: [HTTPClientRequestPart]
        if let body {
            head.headers.add(name: "Content-Type", value: "application/json")
            head.headers.add(name: "Content-Length", value: String(body.utf8.count))
            parts = [.head(head), .body(.byteBuffer(ByteBuffer(string: body)))]
        } else {
            head.headers.add(name: "Content-Length", value: "0")
            parts = [.head(head)]
        }
        parts.append(.end(nil))
        let channel = try await connection()
        let answer = channel.eventLoop.makePromise(of: (status: Int, body: ByteBuffer).self)
        let timer = channel.eventLoop.scheduleTask(in: .nanoseconds(target.timeout.nanoseconds)) {
            channel.close(promise: nil)
        }
        defer { timer.cancel() }
        channel.writeAndFlush(Exchange(parts: parts, answer: answer)).whenFailure { answer.fail($0) }
        do {
            return try await answer.futureResult.get()
        } catch {
            // The connection is spent: the next request makes a new one.
            close()
            if error is ExchangeHandler.ConnectionClosed {
                throw LoadTestError(.requestFailed, "\(method) \(path): the server closed the connection (or it timed out after \(target.timeout))")
            }
            throw LoadTestError(.requestFailed, "\(method) \(path): \(error)")
        }
    }

    /// Sends a request and decodes a 2xx JSON object; anything else is an error.
    private func json(_ method: HTTPMethod, _ path: String, _ token: Token, body: String? = nil) async throws(LoadTestError) -> [String: Any] {
        var (status, buffer) = try await send(method, path, token, body: body)
        // A read answered 503 (Redis restarting, a connection it dropped) is safe to ask again:
        // a few tries over about two seconds before the books check gives up.
        var tries = 0
        while method == .GET, status == 503, tries < 10 {
            tries += 1
            try? await Task.sleep(for: .milliseconds(200))
            (status, buffer) = try await send(method, path, token, body: body)
        }
        let object = try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: Any]
        guard (200..<300).contains(status) else {
            let error = object?["error"] as? [String: Any]
            let code = error?["code"] as? String ?? "http_\(status)"
            let message = error?["message"] as? String ?? String(String(buffer: buffer).prefix(200))
            throw LoadTestError(.requestFailed, "\(method) \(path): HTTP \(status) \(code): \(message)")
        }
        guard let object else {
            throw LoadTestError(.unexpectedResponse, "\(method) \(path): the answer is not a JSON object: \(String(buffer: buffer).prefix(200))")
        }
        return object
    }

    private static func money(_ value: Any?) -> Money {
        guard let text = value as? String, let money = try? Money(parsing: text, allowNegative: true) else { return .zero }
        return money
    }

    private static func outcome(_ object: [String: Any]) throws(LoadTestError) -> CallOutcome {
        guard let allowed = object["allowed"] as? Bool else {
            throw LoadTestError(.unexpectedResponse, "a decision without 'allowed': \(object)")
        }
        return CallOutcome(allowed: allowed, reason: object["reason"] as? String, amount: money(object["amount"]),
                           holdID: object["hold_id"] as? String)
    }

    /// A JSON string literal.
    static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    private static func usageJSON(_ usage: [UsageItem]) -> String {
        "[" + usage.map { item in
            "{\"meter\":\(quote(item.key.meter)),"
                + (item.key.model.map { "\"model\":\(quote($0))," } ?? "")
                + "\"quantity\":\(item.quantity)}"
        }.joined(separator: ",") + "]"
    }

    private static func segment(_ text: String) -> String {
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove("/")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    func authorize(key: String, usage: [UsageItem], requestID: String, holdTTL: Duration?) async throws(LoadTestError) -> CallOutcome {
        var body = "{\"key\":\(Self.quote(key)),\"request_id\":\(Self.quote(requestID)),\"usage\":\(Self.usageJSON(usage))"
        if let holdTTL { body += ",\"mode\":\"hold\",\"ttl_ms\":\(holdTTL.nanoseconds / 1_000_000)" }
        return try Self.outcome(try await json(.POST, "/v1/authorize", .service, body: body + "}"))
    }

    func report(hold: String, usage: [UsageItem], requestID: String) async throws(LoadTestError) -> CallOutcome {
        let body = "{\"request_id\":\(Self.quote(requestID)),\"usage\":\(Self.usageJSON(usage))}"
        return try Self.outcome(try await json(.POST, "/v1/holds/\(Self.segment(hold))/report", .service, body: body))
    }

    func settle(hold: String, usage: [UsageItem]?, requestID: String) async throws(LoadTestError) -> CallOutcome {
        let body = "{\"request_id\":\(Self.quote(requestID))" + (usage.map { ",\"usage\":\(Self.usageJSON($0))" } ?? "") + "}"
        return try Self.outcome(try await json(.POST, "/v1/holds/\(Self.segment(hold))/settle", .service, body: body))
    }

    func setPrice(meter: String, price: Money, per: Int64) async throws(LoadTestError) {
        _ = try await json(.PUT, "/v1/prices/\(Self.segment(meter))", .admin,
                           body: "{\"price\":\(Self.quote(price.description)),\"per\":\(per)}")
    }

    func createAccount(_ id: AccountID) async throws(LoadTestError) {
        _ = try await json(.POST, "/v1/accounts", .admin, body: "{\"id\":\(Self.quote(id.rawValue))}")
    }

    func createKey(for id: AccountID) async throws(LoadTestError) -> (keyID: String, secret: String) {
        let object = try await json(.POST, "/v1/accounts/\(Self.segment(id.rawValue))/keys", .admin)
        guard let keyID = object["key_id"] as? String, let secret = object["secret"] as? String else {
            throw LoadTestError(.unexpectedResponse, "a created key without key_id and secret")
        }
        return (keyID, secret)
    }

    func setKeyRateLimit(keyID: String, perSecond: Int64) async throws(LoadTestError) {
        _ = try await json(.PUT, "/v1/keys/\(Self.segment(keyID))/limits", .admin, body: "{\"rps\":\(perSecond)}")
    }

    func credit(_ id: AccountID, amount: Money, requestID: String) async throws(LoadTestError) -> CallOutcome {
        let body = "{\"amount\":\(Self.quote(amount.description)),\"request_id\":\(Self.quote(requestID))}"
        return try Self.outcome(try await json(.POST, "/v1/accounts/\(Self.segment(id.rawValue))/credits", .admin, body: body))
    }

    func createCoupons(amount: Money, count: Int) async throws(LoadTestError) -> [String] {
        let expires = ISO8601DateFormatter().string(from: Date().addingTimeInterval(3600))
        let body = "{\"amount\":\(Self.quote(amount.description)),\"count\":\(count),\"max_redemptions\":1,\"expires\":\(Self.quote(expires))}"
        let object = try await json(.POST, "/v1/coupons", .admin, body: body)
        guard let codes = object["codes"] as? [String] else { throw LoadTestError(.unexpectedResponse, "coupons created without codes") }
        return codes
    }

    func redeem(_ id: AccountID, code: String) async throws(LoadTestError) -> CallOutcome {
        let path = "/v1/accounts/\(Self.segment(id.rawValue))/redeem"
        let (status, buffer) = try await send(.POST, path, .admin, body: "{\"code\":\(Self.quote(code))}")
        let object = try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: Any]
        if status == 200, let object {
            return CallOutcome(allowed: object["redeemed"] as? Bool ?? false, amount: Self.money(object["amount"]),
                               entryID: object["entry_id"] as? String)
        }
        // A refused code (422 invalid, expired, exhausted, already_redeemed; 429) is a denial.
        if status == 422 || status == 429, let code = (object?["error"] as? [String: Any])?["code"] as? String {
            return CallOutcome(allowed: false, reason: code)
        }
        throw LoadTestError(.requestFailed, "POST \(path): HTTP \(status): \(String(buffer: buffer).prefix(200))")
    }

    func ledger(_ id: AccountID, cursor: String?) async throws(LoadTestError) -> (records: [LedgerRecord], next: String?) {
        var path = "/v1/accounts/\(Self.segment(id.rawValue))/ledger?limit=10000"
        if let cursor { path += "&cursor=\(Self.segment(cursor))" }
        let object = try await json(.GET, path, .admin)
        guard let entries = object["entries"] as? [[String: Any]] else {
            throw LoadTestError(.unexpectedResponse, "a ledger page without entries")
        }
        let records = entries.map {
            LedgerRecord(id: $0["id"] as? String ?? "", requestID: $0["request_id"] as? String ?? "", kind: $0["kind"] as? String ?? "", amount: Self.money($0["amount"]))
        }
        return (records, object["next_cursor"] as? String)
    }

    func account(_ id: AccountID) async throws(LoadTestError) -> (balance: Money, held: Money) {
        let object = try await json(.GET, "/v1/accounts/\(Self.segment(id.rawValue))", .admin)
        guard object["balance"] is String, object["held"] is String else {
            throw LoadTestError(.unexpectedResponse, "an account without balance and held: \(object)")
        }
        return (Self.money(object["balance"]), Self.money(object["held"]))
    }

    func auditProblems(_ ids: [AccountID]) async throws(LoadTestError) -> [String] {
        let object = try await json(.GET, "/v1/audit", .admin)
        let wanted = Set(ids.map(\.rawValue))
        guard object["clean"] is Bool else { throw LoadTestError(.unexpectedResponse, "an audit without 'clean'") }
        let drifting = object["drifting"] as? [[String: Any]] ?? []
        return drifting.compactMap { account -> [String]? in
            guard let id = account["account"] as? String, wanted.contains(id) else { return nil }
            return (account["problems"] as? [String] ?? ["drift"]).map { "\(id): \($0)" }
        }.flatMap { $0 }
    }
}
