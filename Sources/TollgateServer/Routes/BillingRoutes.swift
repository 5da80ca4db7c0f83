import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import NIOCore
import TollgateCore

/// The account holder's "Credits & Billing": coupons and grants, payment history, the usage
/// breakdown and the downloadable reports. Account tokens use them on their own account;
/// the admin token on any. Creating coupons and granting credit are the operator's.
struct BillingRoutes: Sendable {
    let engine: Engine
    let couponPolicy: CouponGuessingPolicy
    let clientAddress: ClientAddressResolver

    func register(on routes: RouteTable) {
        routes.post("/v1/coupons", .admin) { request, _ in try await createCoupons(request) }
        routes.post("/v1/accounts/:id/redeem", .adminOrOwnerMetered) { request, context in try await redeem(request, context) }
        routes.post("/v1/accounts/:id/grants", .admin) { request, context in try await grant(request, context) }
        routes.get("/v1/accounts/:id/payments", .adminOrOwner) { request, context in try await payments(request, context) }
        routes.get("/v1/accounts/:id/usage", .adminOrOwnerMetered) { request, context in
            let id = try PathParameter.account(context)
            return JSON.response(try await breakdown(id, request.uri.queryParameters))
        }
        routes.get("/v1/accounts/:id/reports/transactions.csv", .adminOrOwnerMetered) { request, context in
            try await transactions(request, context, csv: true)
        }
        routes.get("/v1/accounts/:id/reports/transactions.json", .adminOrOwnerMetered) { request, context in
            try await transactions(request, context, csv: false)
        }
        routes.get("/v1/accounts/:id/reports/usage.csv", .adminOrOwnerMetered) { request, context in
            let id = try PathParameter.account(context)
            let usage = try await breakdown(id, request.uri.queryParameters)
            return Response(status: .ok, headers: Self.download("usage", id, "csv"),
                            body: .init(byteBuffer: ByteBuffer(string: usage.csv())))
        }
        routes.get("/v1/accounts/:id/reports/usage.json", .adminOrOwnerMetered) { request, context in
            let id = try PathParameter.account(context)
            return JSON.response(try await breakdown(id, request.uri.queryParameters))
        }
    }

    private func createCoupons(_ request: Request) async throws -> Response {
        let body = try await JSON.decode(CreateCouponsBody.self, from: request)
        let expires = try Self.time(body.expires, "expires")
        let creditExpires = try body.credit_expires.map { try Self.time($0, "credit_expires") }
        let account = try apiCall { () throws(TollgateError) -> AccountID? in
            guard let text = body.account else { return nil }
            return try AccountID(text)
        }
        let requestID = try apiCall { () throws(TollgateError) in try body.request_id.map { (text) throws(TollgateError) in try RequestID(text) } }
        let batch = try await engineCall { () async throws(TollgateError) in
            try await engine.createCoupons(
                amount: try Money(parsing: body.amount), count: body.count ?? 1, maxRedemptions: body.max_redemptions ?? 1,
                expires: expires, account: account, creditExpires: creditExpires, requestID: requestID)
        }
        return JSON.response(batch, status: .created)
    }

    private func redeem(_ request: Request, _ context: TollgateRequestContext) async throws -> Response {
        let id = try PathParameter.account(context)
        let body = try await JSON.decode(RedeemBody.self, from: request)
        let requestID = try apiCall { () throws(TollgateError) in try body.request_id.map { (text) throws(TollgateError) in try RequestID(text) } }
        let redemption = try await engineCall { () async throws(TollgateError) in
            try await engine.redeemCoupon(id, code: body.code, requestID: requestID, clientAddress: clientAddress.key(request, context),
                                          policy: couponPolicy)
        }
        let decision = redemption.decision
        guard decision.allowed else {
            let reason = decision.reason?.rawValue ?? "invalid"
            let message = decision.reason?.explanation ?? "the coupon was refused"
            if reason == DenialReason.tooManyAttempts.rawValue {
                let seconds = max(1, ((decision.retryAfterMilliseconds ?? 1000) + 999) / 1000)
                throw APIError(.tooManyRequests, reason, message, headers: [.retryAfter: String(seconds)])
            }
            throw APIError(reason == DenialReason.accountClosed.rawValue ? .conflict : .unprocessableContent, reason, message)
        }
        return JSON.response(RedemptionView(redemption))
    }

    private func grant(_ request: Request, _ context: TollgateRequestContext) async throws -> Response {
        let id = try PathParameter.account(context)
        let body = try await JSON.decode(GrantBody.self, from: request)
        let expires = try body.expires.map { try Self.time($0, "expires") }
        let decision = try await engineCall { () async throws(TollgateError) in
            try await engine.credit(id, amount: try Money(parsing: body.amount), kind: .grant, expires: expires,
                                    requestID: try RequestID(body.request_id))
        }
        return JSON.response(decision)
    }

    private func payments(_ request: Request, _ context: TollgateRequestContext) async throws -> Response {
        let id = try PathParameter.account(context)
        let query = request.uri.queryParameters
        var kinds: Set<LedgerKind>?
        if let text = query["kind"] {
            var set = Set<LedgerKind>()
            for name in text.split(separator: ",") {
                guard let kind = LedgerKind(rawValue: String(name)) else {
                    throw APIError.badRequest("'kind' takes topup, deposit, coupon, grant, adjustment, expire (got '\(name.prefix(40))')")
                }
                set.insert(kind)
            }
            kinds = set
        }
        let limit = try Self.integer(query["limit"], "limit", default: 50)
        let from = try query["from"].map { try Self.time(String($0), "from") }
        let to = try query["to"].map { try Self.time(String($0), "to") }
        let cursor = query["cursor"].map(String.init)
        let page = try await engineCall { () async throws(TollgateError) in
            try await engine.payments(id, kinds: kinds, from: from, to: to, limit: limit, cursor: cursor)
        }
        return JSON.response(LedgerPageView(entries: page.entries, next_cursor: page.nextCursor))
    }

    private func breakdown(_ id: AccountID, _ query: FlatDictionary<Substring, Substring>) async throws -> UsageBreakdown {
        let (from, to) = try Self.range(query)
        let grouping = try apiCall { () throws(TollgateError) in try UsageGrouping(parsing: query["by"].map(String.init) ?? "meter") }
        return try await engineCall { () async throws(TollgateError) in try await engine.usage(id, from: from, to: to, by: grouping) }
    }

    /// Streams the transactions page by page: memory stays flat whatever the range holds.
    private func transactions(_ request: Request, _ context: TollgateRequestContext, csv: Bool) async throws -> Response {
        let id = try PathParameter.account(context)
        let (from, to) = try Self.range(request.uri.queryParameters)
        let report = try await engineCall { () async throws(TollgateError) in try await engine.transactionReport(id, from: from, to: to) }
        let source = engine
        let body = ResponseBody { writer in
            try await Self.write(report, csv: csv, engine: source, to: &writer)
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: Self.download("transactions", id, csv ? "csv" : "json"), body: body)
    }


    /// Writes a transaction report page by page.
    private static func write(
        _ report: TransactionReport, csv: Bool, engine: Engine, to writer: inout any ResponseBodyWriter
    ) async throws {
        let (id, from, to) = (report.account, report.from, report.to)
        var totals = TransactionReport.Totals(opening: report.openingBalance)
        if csv {
            try await writer.write(ByteBuffer(string: report.csvHead()))
        } else {
            let head = "{\"account\":\(String(decoding: JSON.encode(id.rawValue), as: UTF8.self)),\"from\":\"\(Timestamp.iso8601(milliseconds: from))\",\"to\":\"\(Timestamp.iso8601(milliseconds: to))\",\"opening_balance\":\"\(report.openingBalance)\",\"entries\":["
            try await writer.write(ByteBuffer(string: head))
        }
        var after: String?
        while true {
            let page = try await engine.ledgerPage(of: report, after: after)
            var chunk = ""
            for entry in page {
                if csv {
                    chunk += TransactionReport.csvRow(entry)
                } else {
                    chunk += (totals.entries == 0 ? "" : ",") + String(decoding: JSON.encode(entry), as: UTF8.self)
                }
                try totals.add(entry)
            }
            if !chunk.isEmpty { try await writer.write(ByteBuffer(string: chunk)) }
            guard page.count == 1000, let last = page.last else { break }
            after = last.id
        }
        if csv {
            try await writer.write(ByteBuffer(string: report.csvTail(totals)))
        } else {
            let credits = Money(micros: totals.credits) ?? .zero, debits = Money(micros: totals.debits) ?? .zero
            let closing = Money(micros: totals.closing) ?? .zero
            try await writer.write(ByteBuffer(string: "],\"credits\":\"\(credits)\",\"debits\":\"\(debits)\",\"closing_balance\":\"\(closing)\",\"entry_count\":\(totals.entries)}"))
        }
    }

    // MARK: Query parsing

    static func time(_ text: String, _ name: String) throws -> Int64 {
        guard let value = Timestamp.parse(text) else {
            throw APIError.badRequest("'\(name)' must be a UTC date or date-time like 2026-11-25 or 2026-11-25T14:00:00Z (got '\(text.prefix(40))')")
        }
        return value
    }

    static func integer(_ text: Substring?, _ name: String, default value: Int) throws -> Int {
        guard let text else { return value }
        guard let parsed = Int(String(text)) else { throw APIError.badRequest("'\(name)' must be a whole number") }
        return parsed
    }

    /// `from` and `to` of a report: `to` defaults to now, `from` to 30 days before `to`.
    static func range(_ query: FlatDictionary<Substring, Substring>) throws -> (Int64, Int64) {
        let to = try query["to"].map { try time(String($0), "to") } ?? Int64(Date().timeIntervalSince1970 * 1000)
        let from = try query["from"].map { try time(String($0), "from") } ?? to - 30 * 86_400_000
        guard to > from else { throw APIError.badRequest("'to' must be after 'from'") }
        return (from, to)
    }

    static func download(_ name: String, _ id: AccountID, _ format: String) -> HTTPFields {
        let safe = String(id.rawValue.unicodeScalars.map { CharacterSet.alphanumerics.contains($0) || $0 == "-" || $0 == "_" ? Character($0) : "_" }.prefix(64))
        return [
            .contentType: format == "csv" ? "text/csv; charset=utf-8" : "application/json",
            .contentDisposition: "attachment; filename=\"\(name)-\(safe).\(format)\"",
        ]
    }
}

struct RedemptionView: Encodable {
    let redeemed = true
    let amount: Money
    let credit_expires: String?
    let entry_id: String?
    let account: AccountState?
    let replayed: Bool

    init(_ redemption: CouponRedemption) {
        replayed = redemption.decision.replayed
        amount = redemption.decision.amount
        credit_expires = redemption.creditExpires.map(Timestamp.iso8601(milliseconds:))
        entry_id = redemption.decision.entryID
        account = redemption.decision.account
    }
}

