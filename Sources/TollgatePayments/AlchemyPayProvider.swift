import Foundation

/// AlchemyPay's on-ramp page and its order webhooks.
///
/// What this relies on (AlchemyPay developer documentation, alchemypay.readme.io, read 2026):
/// - Webhook, "Webhook" (https://alchemypay.readme.io/docs/webhook): `POST` to the
///   `callbackUrl`, JSON body, a `timestamp` header "used for signature verification". On-ramp
///   body fields: `appId`, `orderNo` (AlchemyPay's order id), `merchantOrderNo` (ours),
///   `crypto`, `cryptoQuantity` ("crypto amount"), `network`, `address`, `status` — sent only
///   for `PAY_FAIL`, `PAY_SUCCESS`, `FINISHED` — and `newSignature`; the `signature` field is
///   deprecated.
/// - Webhook signature, "Webhook Signature" (https://alchemypay.readme.io/docs/webhook-signature):
///   the signed text is `timestamp + "POST" + requestPath + requestBody`, with the timestamp from
///   the request header, `requestPath` the path of our callbackUrl without the domain, and
///   `requestBody` the request parameters sorted in ascending order by name, excluding empty
///   values, `signature` and `newSignature`; the sign is HMAC-SHA256 keyed by the appSecret,
///   base64.
/// - Page signing, "Ramp Signature Description"
///   (https://alchemypay.readme.io/docs/ramp-signature-description): `sign` is the base64
///   HMAC-SHA256, keyed by the appSecret, of `timestamp + "GET" + "/index/rampPageBuy" + "?" +`
///   the URL's parameters sorted by name, empty ones dropped, joined `k=v&…`; the timestamp is
///   13-digit milliseconds; `sign` is URL-encoded when appended.
/// - On-ramp parameters, "On Ramp Custom Parameters"
///   (https://alchemypay.readme.io/docs/on-ramp-custom-parameters): `appId`, `timestamp`,
///   `merchantOrderNo` (at most 48 characters, carried back in the webhook), `sign` required;
///   `crypto`, `network`, `address`, `fiat`, `fiatAmount`, `showTable=buy` optional.
/// - "Signature Description" of the Treasury API gives AlchemyPay's request-timestamp tolerance
///   as 5 minutes.
///
/// Assumptions of ours, where the documents leave room:
/// - `requestBody` is the body's top-level members after the filtering above, sorted by name,
///   written as a compact JSON object `{"name":value,...}` with each name and value's text copied
///   byte for byte from the received body. The document's own example writes `"name": value`
///   (a space after the colon, none after the comma), so that layout is accepted too. Both need
///   the appSecret, so accepting two layouts does not weaken the check.
/// - Empty values are `null` and `""`.
/// - The `timestamp` header is 13-digit milliseconds; 5 minutes either way of `now`.
/// - The deprecated `signature` field (SHA-1 over appId, appSecret, orderNo, crypto, network and
///   address) signs neither status nor amount, so it is never trusted: without `newSignature` a
///   webhook is refused.
/// - `appId` in the body, when present, must be ours.
/// - `FINISHED` (crypto delivered) credits `cryptoQuantity` of `crypto`; `PAY_FAIL` fails;
///   `PAY_SUCCESS` (fiat received, crypto not yet sent) and anything else is `.other`.
/// - The checkout URL asks for `fiatAmount` of `fiat=USD` equal to the token amount (the
///   supported tokens are dollar stablecoins); the webhook credits what actually arrived.
///   Parameter values are signed unencoded and URL-encoded in the URL.
public struct AlchemyPayProvider: PaymentProvider {
    /// `alchemypay`.
    public let name = "alchemypay"
    /// The ramp page, `https://ramp.alchemypay.org` by default (`https://ramptest.alchemypay.org`
    /// for tests).
    public var baseURL: String
    /// The appId.
    public var appID: String?
    /// The appSecret; URLs are unsigned and webhooks refused with `not_configured` when `nil`.
    public var appSecret: String?
    /// The path of the callbackUrl AlchemyPay posts to, which it signs: `/v1/webhooks/alchemypay`.
    public var callbackPath: String
    /// How far the `timestamp` header may be from `now`, either way.
    public var tolerance: TimeInterval

    /// The default base URL.
    public static let defaultBaseURL = "https://ramp.alchemypay.org"
    /// The default callback path, the route Tollgate serves.
    public static let defaultCallbackPath = "/v1/webhooks/alchemypay"
    /// The path the page signature names for buying.
    static let buyPagePath = "/index/rampPageBuy"

    /// An AlchemyPay provider; appId and appSecret are optional (see the properties).
    public init(
        baseURL: String = AlchemyPayProvider.defaultBaseURL, appID: String? = nil, appSecret: String? = nil,
        callbackPath: String = AlchemyPayProvider.defaultCallbackPath, tolerance: TimeInterval = 300
    ) {
        self.baseURL = baseURL
        self.appID = appID
        self.appSecret = appSecret
        self.callbackPath = callbackPath
        self.tolerance = tolerance
    }

    /// Whether an appSecret is set.
    public var isWebhookConfigured: Bool { appSecret.map { !$0.isEmpty } ?? false }

    /// AlchemyPay's network code: `TRX` for Tron, `ETH`, `BSC`, `SOL`, else the name.
    public static func networkCode(_ network: PaymentNetwork) -> String {
        switch network.name {
        case "TRON": "TRX"
        case "ETHEREUM": "ETH"
        case "SOLANA": "SOL"
        default: network.name
        }
    }

    /// The signed text of a page URL: `timestamp + "GET" + path + "?" + sorted k=v&…`.
    static func pageSignatureText(timestamp: String, parameters: [(String, String)]) -> String {
        let sorted = parameters.filter { !$0.1.isEmpty }.sorted { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }
        return timestamp + "GET" + buyPagePath + "?" + sorted.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
    }

    /// `BASE?address=…&appId=…&crypto=…&fiat=USD&fiatAmount=…&merchantOrderNo=…&network=…&showTable=buy&timestamp=…&sign=…`
    /// (parameters sorted by name; `sign` only with an appSecret).
    public func checkoutURL(for deposit: DepositCheckout) -> String {
        let timestamp = String(Int64((deposit.createdAt.timeIntervalSince1970 * 1000).rounded(.down)))
        var parameters: [(String, String)] = [
            ("address", deposit.address),
            ("crypto", deposit.token.uppercased()),
            ("fiat", "USD"),
            ("fiatAmount", deposit.amount.description),
            ("merchantOrderNo", deposit.depositID),
            ("network", Self.networkCode(deposit.network)),
            ("showTable", "buy"),
            ("timestamp", timestamp),
        ]
        if let appID, !appID.isEmpty { parameters.append(("appId", appID)) }
        parameters = parameters.filter { !$0.1.isEmpty }.sorted { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }
        let url = baseURL + "?" + queryString(parameters)
        guard let appSecret, !appSecret.isEmpty else { return url }
        let text = Self.pageSignatureText(timestamp: timestamp, parameters: parameters)
        let sign = base64Encoded(hmacSHA256(key: appSecret, message: Array(text.utf8)))
        return url + "&sign=" + percentEncoded(sign)
    }

    /// The `requestBody` part of the webhook's signed text, in the compact layout and in the
    /// layout of the documentation's example.
    static func signedBodies(_ members: [JSONMember]) -> [String] {
        let kept = members.filter { member in
            guard member.name != "signature", member.name != "newSignature" else { return false }
            switch member.value {
            case .null: return false
            case .string(let text): return !text.isEmpty
            default: return true
            }
        }.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        let compact = "{" + kept.map { "\($0.rawName):\($0.rawValue)" }.joined(separator: ",") + "}"
        let documented = "{" + kept.map { "\($0.rawName): \($0.rawValue)" }.joined(separator: ",") + "}"
        return [compact, documented]
    }

    public func verifyWebhook(
        headers: [String: String], body: [UInt8], now: Date
    ) throws(WebhookError) -> WebhookEvent {
        guard let appSecret, !appSecret.isEmpty else {
            throw WebhookError(.notConfigured, "AlchemyPay webhooks are off: TOLLGATE_ALCHEMYPAY_APP_SECRET is not set")
        }
        guard let timestamp = headers["timestamp"]?.trimmingSpaces, !timestamp.isEmpty else {
            throw WebhookError(.missingSignature, "the timestamp header AlchemyPay signs is missing")
        }
        guard timestamp.utf8.count <= 15, timestamp.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
            let milliseconds = Int64(timestamp)
        else {
            throw WebhookError(.malformedSignature, "the timestamp header is not milliseconds since 1970")
        }
        guard let document = JSONValue.parse(body), case .object(let members) = document else {
            throw WebhookError(.malformedBody, "the AlchemyPay webhook body is not a JSON object")
        }
        guard let signatureValue = document["newSignature"], signatureValue != .null else {
            throw WebhookError(.missingSignature, "the AlchemyPay webhook has no newSignature")
        }
        guard let signatureText = signatureValue.stringValue, let signature = base64Decoded(signatureText),
            signature.count == 32
        else {
            throw WebhookError(.malformedSignature, "newSignature is not a base64 HMAC-SHA256")
        }
        let prefix = Array((timestamp + "POST" + callbackPath).utf8)
        var matches = false
        for signedBody in Self.signedBodies(members) {
            let expected = hmacSHA256(key: appSecret, message: prefix + Array(signedBody.utf8))
            if constantTimeEquals(signature, expected) { matches = true }
        }
        guard matches else {
            throw WebhookError(.badSignature, "newSignature does not match the body")
        }
        guard abs(Double(milliseconds) / 1000 - now.timeIntervalSince1970) <= tolerance else {
            throw WebhookError(
                .staleTimestamp, "the signed timestamp \(timestamp) is more than \(Int(tolerance)) s from now")
        }
        if let appID, !appID.isEmpty, let sentAppID = document["appId"]?.stringValue, sentAppID != appID {
            throw WebhookError(.badSignature, "the webhook is for another appId")
        }
        return try Self.event(from: document)
    }

    /// Reads an authenticated body.
    static func event(from document: JSONValue) throws(WebhookError) -> WebhookEvent {
        let depositID = document["merchantOrderNo"]?.stringValue ?? ""
        let orderNo = document["orderNo"]?.scalarText ?? ""
        guard let status = document["status"]?.stringValue else {
            throw WebhookError(.malformedBody, "the AlchemyPay webhook has no status")
        }
        func requireIDs() throws(WebhookError) {
            guard !orderNo.isEmpty else { throw WebhookError(.malformedBody, "the AlchemyPay webhook has no orderNo") }
            guard !depositID.isEmpty else {
                throw WebhookError(.malformedBody, "the AlchemyPay webhook has no merchantOrderNo")
            }
        }
        switch status {
        case "FINISHED":
            try requireIDs()
            guard let amount = document["cryptoQuantity"]?.scalarText, !amount.isEmpty else {
                throw WebhookError(.malformedBody, "a FINISHED AlchemyPay webhook has no cryptoQuantity")
            }
            guard let crypto = document["crypto"]?.stringValue, !crypto.isEmpty else {
                throw WebhookError(.malformedBody, "a FINISHED AlchemyPay webhook has no crypto")
            }
            return WebhookEvent(
                provider: "alchemypay", depositID: depositID, providerTransactionID: orderNo,
                status: .completed(amount: amount, currency: crypto), destination: document["address"]?.stringValue)
        case "PAY_FAIL":
            try requireIDs()
            return WebhookEvent(provider: "alchemypay", depositID: depositID, providerTransactionID: orderNo, status: .failed)
        default:
            return WebhookEvent(
                provider: "alchemypay", depositID: depositID, providerTransactionID: orderNo, status: .other(status))
        }
    }
}
