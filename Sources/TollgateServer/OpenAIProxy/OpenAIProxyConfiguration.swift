import Foundation

/// How `tollgate serve --openai-upstream` meters OpenAI-compatible calls: where they go, how
/// they are estimated, batched and cut. Every default is written here, once.
public struct OpenAIProxyConfiguration: Sendable {
    /// Where calls go: one upstream for every model, or a route table by model.
    public var upstreams: OpenAIUpstreamTable
    /// Output tokens held for a call that names no `max_tokens` / `max_completion_tokens`
    /// (per choice), and sent upstream as its bound, so the upstream generates no more.
    public var defaultMaxOutputTokens: Int64 = Self.defaultDefaultMaxOutputTokens
    /// Input tokens held (and charged, when the upstream reports no usage) per image part of a
    /// request; the default covers the dearest image OpenAI counts (a high-detail image on
    /// gpt-4o-mini: 2,833 + 6 tiles of 5,667 tokens).
    public var imageTokens: Int64 = Self.defaultImageTokens
    /// A streamed call reports a batch once this many output tokens are unreported...
    public var batchTokens: Int64 = Self.defaultBatchTokens
    /// ...or once this long has passed since the last report with any unreported.
    public var batchInterval: Duration = Self.defaultBatchInterval
    /// How long a call's hold lives when the proxy never settles it (a crash): then it
    /// expires by itself and the books balance.
    public var holdTTL: Duration = Self.defaultHoldTTL
    /// Longest the upstream may stay silent (before its answer's head, or between two reads of
    /// its body); then the call ends as an upstream failure.
    public var upstreamTimeout: Duration = Self.defaultUpstreamTimeout
    /// What an upstream failure (an error status, a timeout, a broken connection) charges.
    public var onUpstreamFailure: UpstreamFailurePolicy = .release
    /// Whether streamed answers carry the running cost as SSE comments (`: tollgate-cost ...`),
    /// which SSE clients, the official SDKs among them, ignore.
    public var streamCost = false

    public static let defaultDefaultMaxOutputTokens: Int64 = 1024
    public static let defaultImageTokens: Int64 = 40_000
    public static let defaultBatchTokens: Int64 = 32
    public static let defaultBatchInterval: Duration = .milliseconds(250)
    public static let defaultHoldTTL: Duration = .seconds(15 * 60)
    public static let defaultUpstreamTimeout: Duration = .seconds(60)
    /// Largest request body the proxy reads (a long chat history with images as URLs fits).
    static let maximumRequestBodySize = 8 * 1024 * 1024
    /// Largest non-streamed upstream answer the proxy reads to find its usage.
    static let maximumResponseBodySize = 64 * 1024 * 1024
    /// Most output tokens one call may hold for (its bound times its choices and prompts):
    /// beyond it the call is refused, as no account could be meant to hold that much.
    static let maximumOutputTokensPerCall: Int64 = 100_000_000
    /// The bounds operators may set for `max_tokens` defaults and batch sizes.
    public static let tokenSettingRange: ClosedRange<Int64> = 1...10_000_000

    public init(upstreams: OpenAIUpstreamTable) {
        self.upstreams = upstreams
    }
}

/// What a call that the upstream failed (error status, timeout, broken connection) is charged.
/// Output the client already received is charged either way: it was delivered.
public enum UpstreamFailurePolicy: String, Sendable, CaseIterable {
    /// Nothing beyond delivered output: the hold is given back.
    case release
    /// The input tokens (as estimated) and delivered output.
    case chargeInput = "charge-input"
}

/// The proxy as the server runs it: its settings and the client it calls upstreams with (run
/// `client` as a service of the server's `ServiceGroup`).
public struct OpenAIProxy: Sendable {
    public let configuration: OpenAIProxyConfiguration
    public let client: OpenAIUpstreamClient

    public init(configuration: OpenAIProxyConfiguration) {
        self.configuration = configuration
        self.client = OpenAIUpstreamClient(timeout: configuration.upstreamTimeout)
    }
}
