import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import TollgateCore

/// An `APIError` in OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, so the
/// official SDKs raise their matching exception (`AuthenticationError` for 401,
/// `RateLimitError` for 429, ...). `code` is Tollgate's (a denial reason such as
/// `insufficient_credit`), `type` OpenAI's class of error.
struct OpenAIError: HTTPResponseError, Sendable {
    var error: APIError
    /// OpenAI's class of error when it is not the status's own (the upstream's `type`).
    var declaredType: String?

    init(_ error: APIError, type: String? = nil) {
        self.error = error
        self.declaredType = type
    }

    var status: HTTPResponse.Status { error.status }

    /// OpenAI's error class: the one declared, else the status's.
    var type: String {
        if let declaredType { return declaredType }
        switch error.status.code {
        case 401: return "authentication_error"
        case 402: return "insufficient_quota"
        case 403: return "permission_error"
        case 404: return "not_found_error"
        case 429: return "rate_limit_error"
        case 400..<500: return "invalid_request_error"
        case 502, 504: return "upstream_error"
        default: return "server_error"
        }
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var fields = error.headers
        fields[.contentType] = "application/json"
        return Response(status: error.status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    /// The JSON body, also written as a stream's last event when it is cut.
    var body: [UInt8] {
        JSON.encode(Body(error: .init(message: error.message, type: type, param: nil, code: error.code)))
    }

    /// The event that ends a cut stream: SDKs raise an `APIError` with this message on it.
    var streamEvent: [UInt8] { Array("data: ".utf8) + body + Array("\n\n".utf8) }

    private struct Body: Encodable {
        struct Detail: Encodable {
            let message: String
            let type: String
            let param: String?
            let code: String

            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(message, forKey: .message)
                try container.encode(type, forKey: .type)
                try container.encode(param, forKey: .param)
                try container.encode(code, forKey: .code)
            }
            enum CodingKeys: String, CodingKey { case message, type, param, code }
        }
        let error: Detail
    }

    /// A refused decision: 402 for credit and spend caps, 429 with `Retry-After` for rate,
    /// token-rate and concurrency limits, 401 for an unknown or revoked key, 403 for a frozen
    /// or closed account, 404 for a model without a price.
    static func denied(_ decision: Decision, model: String) -> OpenAIError {
        let reason = decision.reason ?? .insufficientCredit
        let status: HTTPResponse.Status
        var message = reason.explanation
        switch reason {
        case .insufficientCredit, .spendCapReached: status = Self.paymentRequired
        case .rateLimited, .tokenRateLimited, .concurrencyLimited: status = .tooManyRequests
        case .unknownKey, .keyRevoked: status = .unauthorized
        case .accountFrozen, .accountClosed: status = .forbidden
        case .unknownMeter:
            status = .notFound
            message = "the model '\(model)' has no price here"
        case .holdNotFound: status = Self.paymentRequired
        default: status = .forbidden
        }
        var headers: HTTPFields = [:]
        if let retry = decision.retryAfterMilliseconds { headers[.retryAfter] = String((retry + 999) / 1000) }
        return OpenAIError(APIError(status, reason.rawValue, message, headers: headers))
    }

    /// 402, which HTTPTypes names not.
    static let paymentRequired = HTTPResponse.Status(code: 402, reasonPhrase: "Payment Required")

    /// The codes of a 401 for a key that is no active key (the token-guessing limiter counts them).
    static let unknownKeyCodes: Set<String> = [DenialReason.unknownKey.rawValue, DenialReason.keyRevoked.rawValue]

    static let missingKey = OpenAIError(APIError(.unauthorized, "missing_api_key",
                                                 "give your Tollgate API key (tgk_...) as the bearer token", headers: [.wwwAuthenticate: "Bearer"]))
    /// The connection failed: why is the proxy's log's to say (it names the upstream's host).
    static let upstreamUnreachable = OpenAIError(APIError(.badGateway, "upstream_unavailable", "the upstream could not be reached"))

    /// An error status of the upstream, in the proxy's own words: its body can name the
    /// operator's organization, limits or hosts, so only its `type` and `code` are kept, and
    /// only when they are plain tokens (SDKs and clients tell a rate limit from a bad parameter
    /// by them). `Retry-After`, a number of seconds, is kept too.
    static func upstreamAnswered(status: Int, body: [UInt8], retryAfter: String?) -> OpenAIError {
        let (type, code) = plainTypeAndCode(body)
        var headers: HTTPFields = [:]
        if let retryAfter, let seconds = Int(retryAfter), (0...86_400).contains(seconds) { headers[.retryAfter] = String(seconds) }
        let message = "the upstream answered \(status)" + (code.map { " " + $0 } ?? "")
        return OpenAIError(APIError(HTTPResponse.Status(code: status), code ?? "upstream_error", message, headers: headers), type: type)
    }

    /// An error event in the upstream's stream, in the proxy's words as `upstreamAnswered`.
    static func upstreamStreamError(_ data: String) -> OpenAIError {
        let (type, code) = plainTypeAndCode(Array(data.utf8))
        let message = "the upstream's stream ended with an error" + (code.map { " " + $0 } ?? "")
        return OpenAIError(APIError(.badGateway, code ?? "upstream_error", message), type: type)
    }

    /// The `type` and `code` of an OpenAI error body (`{"error": {...}}`), each when a plain token.
    private static func plainTypeAndCode(_ body: [UInt8]) -> (type: String?, code: String?) {
        let detail = ((try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any])?["error"] as? [String: Any]
        return ((detail?["type"] as? String).flatMap(plainToken), (detail?["code"] as? String).flatMap(plainToken))
    }

    /// `text` when it is a short token of lowercase letters, digits and underscores (OpenAI's
    /// codes and types: `rate_limit_exceeded`, `tokens`), which can carry no identifier such as
    /// `org-...`; nil otherwise.
    private static func plainToken(_ text: String) -> String? {
        guard (1...64).contains(text.utf8.count),
              text.utf8.allSatisfy({ (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || $0 == UInt8(ascii: "_") })
        else { return nil }
        return text
    }
    static let upstreamTimedOut = OpenAIError(APIError(.gatewayTimeout, "upstream_timeout", "the upstream did not answer in time"))
    static let clientTooSlow = OpenAIError(APIError(.requestTimeout, "client_read_timeout",
                                                    "the stream was ended: the client did not read it for longer than the upstream timeout"))
    static let upstreamBroken = OpenAIError(APIError(.badGateway, "upstream_stream_broken", "the upstream's stream ended before its answer was complete"))
}
