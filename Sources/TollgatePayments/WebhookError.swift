import TollgateCore

/// Why a provider's webhook was refused. Nothing may change when one is thrown.
///
/// `httpStatus` is the suggested answer: 400 for a request that is not a well-formed webhook,
/// 401 for one whose signature or timestamp does not authenticate it, 503 for a provider this
/// deployment has no secret for (the provider retries, and succeeds once the secret is set).
public struct WebhookError: CodedError {
    /// A stable, machine-readable error code.
    public typealias Code = ErrorCode<WebhookError>

    /// What went wrong, for programs.
    public var code: Code
    /// What went wrong, for people. Never contains a secret or an expected signature.
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// The HTTP status to answer with: 400, 401 or 503.
    public var httpStatus: Int {
        switch code {
        case .badSignature, .staleTimestamp: 401
        case .notConfigured: 503
        default: 400
        }
    }
}

extension ErrorCode where Family == WebhookError {
    /// The signature (or the timestamp it needs) is absent.
    public static var missingSignature: Self { Self("missing_signature") }
    /// The signature header or field is present but not of the documented form.
    public static var malformedSignature: Self { Self("malformed_signature") }
    /// The signature does not match the body under the configured secret.
    public static var badSignature: Self { Self("bad_signature") }
    /// The signed timestamp is more than the tolerance away from now, either way.
    public static var staleTimestamp: Self { Self("stale_timestamp") }
    /// The body is not the JSON the provider documents, or lacks a field we need.
    public static var malformedBody: Self { Self("malformed_body") }
    /// This deployment has no webhook secret for the provider.
    public static var notConfigured: Self { Self("not_configured") }
}
