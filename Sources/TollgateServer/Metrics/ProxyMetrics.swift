import Metrics

/// The OpenAI proxy's metrics: calls by endpoint and outcome, tokens charged, cut streams,
/// the upstream's latency and the proxy's own overhead.
final class ProxyMetrics: Sendable {
    /// How a proxied call ended.
    enum Outcome: String, Sendable {
        /// Answered by the upstream and settled on its usage.
        case completed
        /// Refused before the upstream was called (credit, a limit, a cap, the key).
        case denied
        /// A stream ended by the proxy when a batch was refused.
        case cut
        /// The client left mid-stream.
        case clientGone = "client_gone"
        /// The upstream answered an error, timed out or broke the connection.
        case upstreamFailed = "upstream_failed"
        /// The request was not one the proxy meters (bad JSON, an unknown field type).
        case invalid
    }

    private let calls = LabeledCounters("tollgate_openai_calls_total")
    private let cuts = LabeledCounters("tollgate_openai_cut_streams_total")
    private let inputTokens = Metrics.Counter(label: "tollgate_openai_tokens_total", dimensions: [("kind", "input")])
    private let outputTokens = Metrics.Counter(label: "tollgate_openai_tokens_total", dimensions: [("kind", "output")])
    /// From sending the request upstream to its answer's head.
    private let upstreamLatency = Metrics.Timer(label: "tollgate_openai_upstream_latency_seconds", preferredDisplayUnit: .seconds)
    /// From the client's request read to the upstream request sent: parsing and the hold.
    private let overhead = Metrics.Timer(label: "tollgate_openai_proxy_overhead_seconds", preferredDisplayUnit: .seconds)

    func recordCall(_ endpoint: OpenAIEndpoint, _ outcome: Outcome) {
        calls.increment([("endpoint", endpoint.rawValue), ("outcome", outcome.rawValue)])
    }

    /// Tokens a call was settled on.
    func recordTokens(input: Int64, output: Int64) {
        if input > 0 { inputTokens.increment(by: input) }
        if output > 0 { outputTokens.increment(by: output) }
    }

    /// A stream cut because a batch was refused, by the engine's reason.
    func recordCut(reason: String) {
        cuts.increment([("reason", reason)])
    }

    func recordUpstreamLatency(since start: ContinuousClock.Instant) { upstreamLatency.recordInterval(since: start) }
    func recordOverhead(since start: ContinuousClock.Instant) { overhead.recordInterval(since: start) }
}
