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
        let channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
        do {
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connectTimeout(.seconds(Int64(max(1, timeout.wholeSeconds))))
                .connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw LoadTestError(.unreachable, "cannot connect to \(address): \(error)")
        }
        let result: Swift.Result<Result, LoadTestError>
        do {
            result = try await channel.executeThenClose { inbound, outbound in
                let session = HTTPSession(target: self, channel: channel.channel, inbound: inbound.makeAsyncIterator(), outbound: outbound)
                do throws(LoadTestError) {
                    return .success(try await body(session))
                } catch {
                    return .failure(error)
                }
            }
        } catch {
            throw LoadTestError(.requestFailed, "the connection to \(address) failed: \(error)")
        }
        return try result.get()
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

/// One keep-alive connection: a request, then its answer, then the next.
final class HTTPSession: LoadSession {
    private let target: HTTPTarget
    private let channel: any Channel
    private var inbound: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>
    private var broken = false

    init(target: HTTPTarget, channel: any Channel,
         inbound: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator,
         outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>) {
        self.target = target
        self.channel = channel
        self.inbound = inbound
        self.outbound = outbound
    }

    private enum Token { case service, admin }

    /// Sends one request and reads its whole answer.
    private func send(_ method: HTTPMethod, _ path: String, _ token: Token, body: String? = nil) async throws(LoadTestError) -> (status: Int, body: ByteBuffer) {
        guard !broken else { throw LoadTestError(.requestFailed, "the connection was dropped after an earlier failure") }
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
        var parts: [HTTPClientRequestPart] = [.head(head)]
        if let body {
            head.headers.add(name: "Content-Type", value: "application/json")
            head.headers.add(name: "Content-Length", value: String(body.utf8.count))
            parts = [.head(head), .body(.byteBuffer(ByteBuffer(string: body)))]
        } else {
            head.headers.add(name: "Content-Length", value: "0")
            parts = [.head(head)]
        }
        parts.append(.end(nil))
        let channel = self.channel
        let timer = channel.eventLoop.scheduleTask(in: .nanoseconds(target.timeout.nanoseconds)) {
            channel.close(promise: nil)
        }
        defer { timer.cancel() }
        do {
            try await outbound.write(contentsOf: parts)
            var status = 0
            var collected = ByteBuffer()
            while let part = try await inbound.next() {
                switch part {
                case .head(let response): status = Int(response.status.code)
                case .body(var chunk): collected.writeBuffer(&chunk)
                case .end: return (status, collected)
                }
            }
            broken = true
            throw LoadTestError(.requestFailed, "\(method) \(path): the server closed the connection (or it timed out after \(target.timeout))")
        } catch let error as LoadTestError {
            throw error
        } catch {
            broken = true
            throw LoadTestError(.requestFailed, "\(method) \(path): \(error)")
        }
    }

    /// Sends a request and decodes a 2xx JSON object; anything else is an error.
    private func json(_ method: HTTPMethod, _ path: String, _ token: Token, body: String? = nil) async throws(LoadTestError) -> [String: Any] {
        let (status, buffer) = try await send(method, path, token, body: body)
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
