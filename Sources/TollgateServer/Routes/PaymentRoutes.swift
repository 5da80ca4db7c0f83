import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import TollgateCore
import TollgatePayments

/// Crypto deposits: the account holder starts one (and gets the provider's checkout URL and
/// a receive payload for a QR code); the provider confirms it by a signed webhook, which
/// credits the account exactly once.
struct PaymentRoutes: Sendable {
    let engine: Engine
    let payments: PaymentsConfiguration

    /// Webhook bodies above this are refused before verification.
    static let maximumWebhookBody = 64 * 1024

    func register(on routes: RouteTable) {
        routes.post("/v1/accounts/:id/deposits", .adminOrOwnerMetered) { request, context in try await createDeposit(request, context) }
        routes.get("/v1/accounts/:id/deposits", .adminOrOwner) { request, context in
            let id = try PathParameter.account(context)
            let deposits = try await engineCall { () async throws(TollgateError) in try await engine.deposits(id) }
            return JSON.response(["deposits": deposits])
        }
        routes.post("/v1/webhooks/:provider", .routeCredential(.providerSignature)) { request, context in try await webhook(request, context) }
    }

    private func createDeposit(_ request: Request, _ context: TollgateRequestContext) async throws -> Response {
        let id = try PathParameter.account(context)
        let body = try await JSON.decode(DepositBody.self, from: request)
        guard let provider = payments.provider(named: body.provider) else {
            throw APIError.badRequest("'provider' is one of \(payments.providers.map(\.name).joined(separator: ", "))")
        }
        // With a request id a retry names the same deposit, and gets it back instead of a second one.
        let depositID = try apiCall { () throws(TollgateError) in
            try body.request_id.map { (text) throws(TollgateError) in DepositID.derived(account: id, requestID: try RequestID(text)) } ?? .random()
        }
        let (checkout, credits) = try Self.payments { () throws(PaymentsError) in
            let checkout = try payments.checkout(depositID: depositID.description, amount: body.amount, token: body.token, createdAt: Date())
            return (checkout, try payments.credits(forAmount: body.amount, currency: checkout.token))
        }
        let deposit = try await engineCall { () async throws(TollgateError) in
            try await engine.createDeposit(id, credits: credits, token: checkout.token, tokenAmount: body.amount,
                                           provider: provider.name, network: checkout.network.name,
                                           address: checkout.address, depositID: depositID)
        }
        return JSON.response(
            CreatedDeposit(deposit: deposit, checkout_url: provider.checkoutURL(for: checkout), receive: payments.receivePayload(for: checkout)),
            status: .created)
    }

    private func webhook(_ request: Request, _ context: TollgateRequestContext) async throws -> Response {
        let name = try PathParameter.text(context, "provider")
        guard let provider = payments.provider(named: name) else { throw APIError.notFound("no payment provider '\(name.prefix(40))'") }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: Self.maximumWebhookBody)
        } catch {
            throw APIError(.contentTooLarge, "body_too_large", "the body is larger than \(Self.maximumWebhookBody) bytes")
        }
        let body = Array(buffer.readableBytesView)
        var headers: [String: String] = [:]
        for field in request.headers { headers[field.name.canonicalName.lowercased()] = field.value }
        let event: WebhookEvent
        do {
            event = try provider.verifyWebhook(headers: headers, body: body, now: Date())
        } catch {
            switch error.code {
            case .missingSignature, .malformedSignature, .badSignature, .staleTimestamp:
                throw APIError(.unauthorized, error.code.rawValue, error.message)
            case .notConfigured:
                throw APIError(.notFound, error.code.rawValue, error.message)
            default:
                throw APIError(.badRequest, error.code.rawValue, error.message)
            }
        }
        if case .other(let status) = event.status {
            return JSON.response(WebhookAnswer(deposit: event.depositID.isEmpty ? nil : event.depositID, status: "ignored", detail: status))
        }
        let depositID = try apiCall { () throws(TollgateError) in try DepositID(parsing: event.depositID) }
        let deposit = try await engineCall { () async throws(TollgateError) in try await engine.deposit(depositID) }
        let confirmation: DepositConfirmation
        switch event.status {
        case .completed(let amount, let currency):
            if let destination = event.destination, deposit.isReceiveAddress(destination) {
                let credits = try Self.payments { () throws(PaymentsError) in try payments.credits(forAmount: amount, currency: currency) }
                confirmation = .completed(credits: credits, received: amount + " " + currency)
            } else {
                // Paid, but not to us (or the provider did not say where): nothing is
                // credited, and the deposit is flagged for an operator.
                confirmation = .rejected(reason: event.destination == nil ? "missing_destination" : "wrong_destination")
            }
        case .failed, .other:
            confirmation = .failed
        }
        let settlement = try await engineCall { () async throws(TollgateError) in
            try await engine.settleDeposit(depositID, provider: provider.name, providerTransactionID: event.providerTransactionID,
                                           confirmation: confirmation)
        }
        var detail: String?
        if case .rejected(let reason) = confirmation { detail = reason }
        return JSON.response(WebhookAnswer(deposit: depositID.description, status: settlement.outcome.rawValue, detail: detail))
    }

    /// Runs payment-configuration calls, turning their errors into 400s (422 for a token or
    /// address the server cannot take).
    static func payments<T>(_ body: () throws(PaymentsError) -> T) throws -> T {
        do {
            return try body()
        } catch {
            let status: HTTPResponse.Status = error.code == .unsupportedToken || error.code == .noDepositAddress ? .unprocessableContent : .badRequest
            throw APIError(status, error.code.rawValue, error.message)
        }
    }
}

struct CreatedDeposit: Encodable {
    let deposit: Deposit
    let checkout_url: String
    let receive: ReceivePayload

    private enum CodingKeys: String, CodingKey { case checkout_url, receive }

    /// The deposit's fields, then `checkout_url` and `receive`.
    func encode(to encoder: any Encoder) throws {
        try deposit.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(checkout_url, forKey: .checkout_url)
        try container.encode(receive, forKey: .receive)
    }
}

/// What a provider is told: `credited`, `amount_mismatch` or `duplicate_payment` (credited
/// and flagged), `duplicate` (already applied), `failed`, `rejected` (paid elsewhere; `detail`
/// says why), or `ignored` (a status that changes nothing).
struct WebhookAnswer: Encodable {
    let ok = true
    let deposit: String?
    let status: String
    let detail: String?
}
