import Foundation
import HTTPTypes
import Hummingbird
import TollgateCore

/// The operator's API (admin token), the HTTP twin of every CLI verb; an account token may
/// read its own account and ledger.
struct AdminRoutes: Sendable {
    let engine: Engine

    func register(on routes: RouteTable) {
        routes.post("/v1/accounts", .admin) { request, _ in try await createAccount(request) }
        routes.get("/v1/accounts/:id", .adminOrOwner) { request, context in
            let id = try PathParameter.account(context)
            return JSON.response(try await engineCall { () async throws(TollgateError) in try await engine.account(id) })
        }
        routes.post("/v1/accounts/:id/freeze", .admin) { request, context in try await setStatus(request, context, frozen: true) }
        routes.post("/v1/accounts/:id/unfreeze", .admin) { request, context in try await setStatus(request, context, frozen: false) }
        routes.post("/v1/accounts/:id/credits", .admin) { request, context in try await credit(request, context) }
        routes.post("/v1/accounts/:id/keys", .admin) { request, context in
            let id = try PathParameter.account(context)
            let created = try await engineCall { () async throws(TollgateError) in try await engine.createKey(for: id) }
            return JSON.response(created, status: .created)
        }
        routes.get("/v1/accounts/:id/keys", .admin) { request, context in
            let id = try PathParameter.account(context)
            return JSON.response(try await engineCall { () async throws(TollgateError) in try await engine.keys(of: id) })
        }
        routes.delete("/v1/keys/:key_id", .admin) { request, context in
            let key = try PathParameter.key(context)
            try await engineCall { () async throws(TollgateError) in try await engine.revokeKey(key) }
            return JSON.response(["key_id": key.rawValue, "status": "revoked"])
        }
        routes.put("/v1/prices/:meter", .admin) { request, context in try await setPrice(request, context) }
        routes.get("/v1/prices", .admin) { request, _ in
            let prices = try await engineCall { () async throws(TollgateError) in try await engine.prices() }
            return JSON.response(prices.sorted { $0.key < $1.key }.map { PriceBookEntry(key: $0.key, price: $0.value) })
        }
        routes.put("/v1/accounts/:id/limits", .admin) { request, context in
            let id = try PathParameter.account(context)
            return try await setLimits(request, .account(id))
        }
        routes.put("/v1/keys/:key_id/limits", .admin) { request, context in
            return try await setLimits(request, .key(try PathParameter.key(context)))
        }
        routes.get("/v1/accounts/:id/ledger", .adminOrOwner) { request, context in try await ledger(request, context) }
        routes.get("/v1/audit", .admin) { request, _ in
            return JSON.response(try await engineCall { () async throws(TollgateError) in try await engine.audit() })
        }
        routes.post("/v1/accounts/:id/tokens", .admin) { request, context in
            let id = try PathParameter.account(context)
            let created = try await engineCall { () async throws(TollgateError) in try await engine.createAccountToken(for: id) }
            return JSON.response(created, status: .created)
        }
        routes.get("/v1/accounts/:id/tokens", .admin) { request, context in
            let id = try PathParameter.account(context)
            return JSON.response(try await engineCall { () async throws(TollgateError) in try await engine.accountTokens(of: id) })
        }
        routes.delete("/v1/accounts/:id/tokens", .admin) { request, context in
            let id = try PathParameter.account(context)
            let count = try await engineCall { () async throws(TollgateError) in try await engine.revokeAccountTokens(of: id) }
            return JSON.response(RevokedTokens(account: id.rawValue, revoked: count))
        }
        // The account's own token may revoke its tokens too (signing a dashboard out).
        routes.delete("/v1/accounts/:id/tokens/:token_id", .adminOrOwner) { request, context in
            let id = try PathParameter.account(context)
            let tokenID = try PathParameter.text(context, "token_id")
            try await engineCall { () async throws(TollgateError) in try await engine.revokeAccountToken(tokenID, of: id) }
            return JSON.response(["token_id": tokenID, "status": "revoked"])
        }
    }

    private func createAccount(_ request: Request) async throws -> Response {
        let body = try await JSON.decode(CreateAccountBody.self, from: request)
        guard !body.id.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw APIError.badRequest("an account id must not contain control characters")
        }
        let account = try await engineCall { () async throws(TollgateError) in
            try await engine.createAccount(try AccountID(body.id), creditLimit: try Money(parsing: body.credit_limit ?? "0"))
        }
        // The id is one path segment: a '/' in it is encoded too.
        var segment = CharacterSet.urlPathAllowed
        segment.remove("/")
        return JSON.response(account, status: .created, headers: [.location: "/v1/accounts/\(body.id.addingPercentEncoding(withAllowedCharacters: segment) ?? body.id)"])
    }

    private func setStatus(_ request: Request, _ context: some RequestContext, frozen: Bool) async throws -> Response {
        let id = try PathParameter.account(context)
        return JSON.response(try await engineCall { () async throws(TollgateError) in
            frozen ? try await engine.freeze(id) : try await engine.unfreeze(id)
        })
    }

    private func credit(_ request: Request, _ context: some RequestContext) async throws -> Response {
        let id = try PathParameter.account(context)
        let body = try await JSON.decode(CreditBody.self, from: request)
        guard let kind = CreditKind(rawValue: body.kind ?? "topup") else {
            throw APIError.badRequest("'kind' is topup, grant or adjustment")
        }
        let decision = try await engineCall { () async throws(TollgateError) in
            try await engine.credit(id, amount: try Money(parsing: body.amount, allowNegative: kind == .adjustment),
                                    kind: kind, requestID: try RequestID(body.request_id))
        }
        return JSON.response(decision)
    }

    private func setPrice(_ request: Request, _ context: some RequestContext) async throws -> Response {
        let meter = try PathParameter.text(context, "meter")
        let body = try await JSON.decode(PriceBody.self, from: request)
        let (key, price) = try apiCall { () throws(TollgateError) in
            (try PriceKey(meter: meter, model: body.model), try Price(price: try Money(parsing: body.price), per: body.per ?? 1))
        }
        try await engineCall { () async throws(TollgateError) in try await engine.setPrice(key, price) }
        return JSON.response(PriceBookEntry(key: key, price: price))
    }

    private func setLimits(_ request: Request, _ scope: LimitScope) async throws -> Response {
        let body = try await JSON.decode(LimitsBody.self, from: request)
        let update = try apiCall { () throws(TollgateError) in try body.update() }
        try await engineCall { () async throws(TollgateError) in try await engine.setLimits(scope, update) }
        let limits: [LimitName: Int64]
        switch scope {
        case .account(let id):
            limits = try await engineCall { () async throws(TollgateError) in try await engine.limits(of: id) }
        case .key(let key):
            let account = try await engineCall { () async throws(TollgateError) in try await engine.account(of: key) }
            let keys = try await engineCall { () async throws(TollgateError) in try await engine.keys(of: account) }
            limits = keys.first { $0.keyID == key }?.limits ?? [:]
        }
        return JSON.response(LimitsView(limits: limits))
    }

    private func ledger(_ request: Request, _ context: some RequestContext) async throws -> Response {
        let id = try PathParameter.account(context)
        let query = request.uri.queryParameters
        var limit = 50
        if let text = query["limit"] {
            guard let parsed = Int(String(text)) else { throw APIError.badRequest("'limit' must be a number from 1 to 10000") }
            limit = parsed
        }
        let cursor = query["cursor"].map(String.init)
        let page = try await engineCall { () async throws(TollgateError) in try await engine.ledger(id, limit: limit, cursor: cursor) }
        return JSON.response(LedgerPageView(entries: page.entries, next_cursor: page.nextCursor))
    }
}

struct LedgerPageView: Encodable {
    let entries: [LedgerEntry]
    let next_cursor: String?
}

struct LimitsView: Encodable {
    let limits: [LimitName: Int64]

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: AnyCodingKey.self)
        for (name, value) in limits.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            let key = AnyCodingKey(stringValue: name.displayName)!
            if name.isAmount {
                try container.encode(Money(micros: value) ?? .zero, forKey: key)
            } else {
                try container.encode(value, forKey: key)
            }
        }
    }
}

/// `DELETE /v1/accounts/{id}/tokens`: how many tokens were revoked.
struct RevokedTokens: Encodable {
    let account: String
    let revoked: Int
}
