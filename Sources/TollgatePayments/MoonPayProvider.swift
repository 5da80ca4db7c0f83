import Foundation

/// MoonPay's buy widget and its webhooks.
///
/// What this relies on (MoonPay developer documentation, read 2026):
/// - Webhook signing, "Request signing / Checking a Webhook Signature"
///   (https://dev.moonpay.com/api-reference/widget/webhooks/signature) and the Platform webhooks
///   overview (https://dev.moonpay.com/api-reference/platform/webhooks/overview): header
///   `Moonpay-Signature-V2: t=TIMESTAMP,s=SIGNATURE`; elements split at `,`, each at `=`; `t` is
///   Unix seconds; `s` is the lowercase hex HMAC-SHA256, keyed by the webhook API key, of the
///   timestamp as a string, `.`, and the raw body; compare in constant time; 400 for a missing
///   header or a missing `t`/`s`. The older `Moonpay-Signature` header is ignored.
/// - Webhook bodies, "Buy" webhook events (https://dev.moonpay.com/api-reference/widget/webhooks/buy):
///   `{"type": "transaction_created" | "transaction_updated" | "transaction_failed", "data": {...}}`
///   where `data` is the buy transaction: `id`, `status` (`completed`, `failed`, pending states),
///   `quoteCurrencyAmount` (a JSON number: the crypto bought), `currency.code` (such as
///   `usdt_trx`), `externalTransactionId` (the id we put in the widget URL). Events may be
///   duplicated or arrive out of order: crediting is idempotent by `data.id` (the caller's job).
/// - URL signing, "Enhance security using signed URLs"
///   (https://dev.moonpay.com/docs/on-ramp-enhance-security-using-signed-urls): HMAC-SHA256 keyed
///   by the secret API key over the URL's query string *including the leading `?`*, as
///   `new URL(url).search` gives it, with every value already URL-encoded; the digest in base64,
///   URL-encoded again, appended last as `&signature=`. Required when `walletAddress` is passed.
///
/// Assumptions of ours:
/// - Tolerance: 5 minutes either way between `t` and `now` (MoonPay sets none).
/// - `s` is decoded as hex of either case and compared as bytes: uppercase hex names the same
///   MAC, so it is accepted.
/// - Only buy events (`type` starting `transaction_`, or no `type`) can credit; sell, swap and
///   KYC events come back as `.other`. A completed or failed buy must carry `data.id` and
///   `data.externalTransactionId`, else `malformed_body`.
/// - MoonPay's currency code is the token in lowercase plus a network suffix: none on Ethereum,
///   `_trx` Tron, `_bsc`, `_polygon`, `_sol`, else `_` + the network in lowercase.
public struct MoonPayProvider: PaymentProvider {
    /// `moonpay`.
    public let name = "moonpay"
    /// The widget's base URL, `https://buy.moonpay.com` by default
    /// (`https://buy-sandbox.moonpay.com` for test keys).
    public var baseURL: String
    /// The publishable key (`pk_...`); omitted from the URL when `nil`.
    public var apiKey: String?
    /// The secret key (`sk_...`) that signs widget URLs; URLs are unsigned when `nil`.
    public var secretKey: String?
    /// The webhook API key; webhooks are refused with `not_configured` when `nil`.
    public var webhookKey: String?
    /// How far a webhook's `t` may be from `now`, either way.
    public var tolerance: TimeInterval

    /// The default base URL.
    public static let defaultBaseURL = "https://buy.moonpay.com"

    /// A MoonPay provider; every secret is optional (see the properties).
    public init(
        baseURL: String = MoonPayProvider.defaultBaseURL, apiKey: String? = nil, secretKey: String? = nil,
        webhookKey: String? = nil, tolerance: TimeInterval = 300
    ) {
        self.baseURL = baseURL
        self.apiKey = apiKey
        self.secretKey = secretKey
        self.webhookKey = webhookKey
        self.tolerance = tolerance
    }

    /// Whether a webhook key is set.
    public var isWebhookConfigured: Bool { webhookKey.map { !$0.isEmpty } ?? false }

    /// MoonPay's currency code for a token on a network, such as `usdt_trx`.
    public static func currencyCode(token: String, network: PaymentNetwork) -> String {
        let base = token.lowercased()
        switch network.name {
        case "ETHEREUM": return base
        case "TRON": return base + "_trx"
        case "BSC": return base + "_bsc"
        case "POLYGON": return base + "_polygon"
        case "SOLANA": return base + "_sol"
        default: return base + "_" + network.name.lowercased()
        }
    }

    /// `BASE?apiKey=…&currencyCode=…&quoteCurrencyAmount=…&walletAddress=…&externalTransactionId=…`
    /// and, with a secret key, `&signature=…` last.
    public func checkoutURL(for deposit: DepositCheckout) -> String {
        var parameters: [(String, String)] = []
        if let apiKey, !apiKey.isEmpty { parameters.append(("apiKey", apiKey)) }
        parameters.append(("currencyCode", Self.currencyCode(token: deposit.token, network: deposit.network)))
        parameters.append(("quoteCurrencyAmount", deposit.amount.description))
        parameters.append(("walletAddress", deposit.address))
        parameters.append(("externalTransactionId", deposit.depositID))
        let search = "?" + queryString(parameters)
        guard let secretKey, !secretKey.isEmpty else { return baseURL + search }
        let signature = base64Encoded(hmacSHA256(key: secretKey, message: Array(search.utf8)))
        return baseURL + search + "&signature=" + percentEncoded(signature)
    }

    public func verifyWebhook(
        headers: [String: String], body: [UInt8], now: Date
    ) throws(WebhookError) -> WebhookEvent {
        guard let webhookKey, !webhookKey.isEmpty else {
            throw WebhookError(.notConfigured, "MoonPay webhooks are off: TOLLGATE_MOONPAY_WEBHOOK_KEY is not set")
        }
        guard let header = headers["moonpay-signature-v2"] else {
            throw WebhookError(.missingSignature, "the Moonpay-Signature-V2 header is missing")
        }
        let (timestamp, signature) = try Self.parseSignatureHeader(header)
        let expected = hmacSHA256(key: webhookKey, message: Array((timestamp + ".").utf8) + body)
        guard constantTimeEquals(signature, expected) else {
            throw WebhookError(.badSignature, "the Moonpay-Signature-V2 signature does not match the body")
        }
        guard let seconds = Int64(timestamp), abs(Double(seconds) - now.timeIntervalSince1970) <= tolerance else {
            throw WebhookError(
                .staleTimestamp, "the signed timestamp \(timestamp) is more than \(Int(tolerance)) s from now")
        }
        return try Self.event(from: body)
    }

    /// Splits `t=…,s=…` into the timestamp text and the signature bytes.
    static func parseSignatureHeader(_ header: String) throws(WebhookError) -> (String, [UInt8]) {
        var timestamp: String?
        var signature: String?
        for element in header.split(separator: ",", omittingEmptySubsequences: false) {
            let pair = element.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard pair.count == 2 else {
                throw WebhookError(.malformedSignature, "Moonpay-Signature-V2 must be t=TIMESTAMP,s=SIGNATURE")
            }
            switch pair[0].trimmingSpaces {
            case "t":
                guard timestamp == nil else { throw WebhookError(.malformedSignature, "Moonpay-Signature-V2 has two t=") }
                timestamp = pair[1].trimmingSpaces
            case "s":
                guard signature == nil else { throw WebhookError(.malformedSignature, "Moonpay-Signature-V2 has two s=") }
                signature = pair[1].trimmingSpaces
            default: continue  // unknown elements are ignored, as Stripe-style headers allow
            }
        }
        guard let timestamp, let signature, !timestamp.isEmpty, !signature.isEmpty else {
            throw WebhookError(.malformedSignature, "Moonpay-Signature-V2 needs both t= and s=")
        }
        guard timestamp.utf8.count <= 12, timestamp.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
            throw WebhookError(.malformedSignature, "the t= of Moonpay-Signature-V2 is not Unix seconds")
        }
        guard signature.utf8.count == 64, let bytes = hexDecoded(signature) else {
            throw WebhookError(.malformedSignature, "the s= of Moonpay-Signature-V2 is not 64 hex digits")
        }
        return (timestamp, bytes)
    }

    /// Reads an authenticated body.
    static func event(from body: [UInt8]) throws(WebhookError) -> WebhookEvent {
        guard let document = JSONValue.parse(body), case .object = document else {
            throw WebhookError(.malformedBody, "the MoonPay webhook body is not a JSON object")
        }
        guard let data = document["data"], case .object = data else {
            throw WebhookError(.malformedBody, "the MoonPay webhook body has no data object")
        }
        let depositID = data["externalTransactionId"]?.stringValue ?? ""
        let transactionID = data["id"]?.stringValue ?? ""
        let type = document["type"]?.stringValue
        if let type, !type.hasPrefix("transaction_") {
            return WebhookEvent(
                provider: "moonpay", depositID: depositID, providerTransactionID: transactionID,
                status: .other("event \(type)"))
        }
        guard let status = data["status"]?.stringValue else {
            throw WebhookError(.malformedBody, "the MoonPay webhook has no data.status")
        }
        func requireIDs() throws(WebhookError) {
            guard !transactionID.isEmpty else { throw WebhookError(.malformedBody, "the MoonPay webhook has no data.id") }
            guard !depositID.isEmpty else {
                throw WebhookError(.malformedBody, "the MoonPay webhook has no data.externalTransactionId")
            }
        }
        switch status {
        case "completed":
            try requireIDs()
            guard let amount = data["quoteCurrencyAmount"]?.scalarText else {
                throw WebhookError(.malformedBody, "a completed MoonPay webhook has no data.quoteCurrencyAmount")
            }
            guard let currency = data["currency"]?["code"]?.stringValue, !currency.isEmpty else {
                throw WebhookError(.malformedBody, "a completed MoonPay webhook has no data.currency.code")
            }
            return WebhookEvent(
                provider: "moonpay", depositID: depositID, providerTransactionID: transactionID,
                status: .completed(amount: amount, currency: currency), destination: data["walletAddress"]?.stringValue)
        case "failed":
            try requireIDs()
            return WebhookEvent(
                provider: "moonpay", depositID: depositID, providerTransactionID: transactionID, status: .failed)
        default:
            return WebhookEvent(
                provider: "moonpay", depositID: depositID, providerTransactionID: transactionID,
                status: .other(status))
        }
    }
}
