import TollgateServer

/// Every setting `tollgate serve` reads, each declared once: its flag, its `TOLLGATE_*`
/// variable, its default and its bounds. The options of `serve` take their names and help
/// from here, and resolve through `Setting.value`.
enum ServeSettings {
    // The HTTP listener.
    static let host = Setting<String>("host", "Address to listen on", valueName: "address", default: "127.0.0.1")
    static let port = Setting<Int>("port", "Port to listen on; 0 picks a free one", in: 0...65_535, default: 8080)
    static let maxConnections = Setting<Int>("max-connections", "Most client connections served at once",
                                             in: 1...1_000_000, default: 10_000)
    static let requestTimeout = Setting<Duration>(
        "request-timeout", "Longest a request's head and body may take to arrive; then 408 request_timeout and the connection closes",
        discussion: "Counted from a request's first byte (a new connection's first request: from the connection's opening). Responses, SSE and WebSocket streams are not limited by it.",
        in: .milliseconds(1)...(.seconds(3600)), default: .seconds(10))
    static let idleTimeout = Setting<Duration>(
        "idle-timeout", "Longest a keep-alive connection may wait for its next request once its responses are written",
        in: .milliseconds(1)...(.seconds(3600)), default: .seconds(75))
    static let trustedProxy = Setting<[String]>(
        "trusted-proxy", variable: "TOLLGATE_TRUSTED_PROXIES",
        "A proxy (IP address) whose X-Forwarded-For names the client; repeat for several (the variable: comma-separated)",
        discussion: "Failed coupon attempts are limited per client address; behind nginx, name it here or every client shares its address.",
        valueName: "ip", expected: "IP addresses, comma-separated", default: []) { text in
        text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
    static let logLevel = Setting<String>("log-level", "How much the log says", choices: ["trace", "debug", "info", "notice", "warning", "error"],
                                          default: "info")

    // Redis.
    static let redis = Setting<String>("redis", variable: "TOLLGATE_REDIS_URL",
                                       "Redis address, redis://[user:password@]host:port[/db] or unix:///path; none starts the embedded Redis",
                                       valueName: "url")
    static let redisCluster = Setting<String>(
        "redis-cluster", "Redis Cluster seed nodes, host:port[,host:port...]; instead of --redis",
        discussion: "A few nodes are enough: the slot map is read from any of them and kept current. See docs/CLUSTER.md.",
        valueName: "nodes")
    static let redisTimeout = Setting<Duration>("redis-timeout", "Longest wait for Redis per gateway decision; then 503 engine_unavailable",
                                                in: .milliseconds(1)...(.seconds(60)), default: .milliseconds(50))
    static let adminRedisTimeout = Setting<Duration>("admin-redis-timeout", "Longest wait for Redis on admin, billing and report calls",
                                                     in: .milliseconds(1)...(.seconds(600)), default: .seconds(5))
    static let redisConnections = Setting<Int>("redis-connections", "Redis connections for gateway decisions", in: 1...64, default: 4)
    static let durability = Setting<String>("durability", "normal (AOF, fsync every second) or strict (fsync before every reply)",
                                            choices: Durability.allCases.map(\.rawValue), default: Durability.normal.rawValue)
    static let dataDir = Setting<String>("data-dir", "Folder for the embedded Redis, generated tokens and journals", valueName: "path",
                                         default: ".tollgate")

    // Tokens and secrets.
    static let adminToken = Setting<String>("admin-token", "Admin token; generated into the data folder when not given", valueName: "token")
    static let serviceToken = Setting<String>("service-token", "Service token for gateways; generated into the data folder when not given",
                                              valueName: "token")
    static let couponSecret = Setting<String>(
        "coupon-secret", "The secret coupon codes are hashed with, at least 16 characters",
        discussion: "When not given, generated once and kept in the data folder (coupon.secret): back it up, no code can be redeemed without it.",
        valueName: "secret")

    // Decisions.
    static let denyStatus = Setting<Int>("deny-status", "Status of a denied /v1/check", choices: [402, 403, 429], default: 403)
    static let failOpen = Switch("fail-open", "Allow gateway calls while Redis cannot answer, journal them and charge them once it is back")
    static let failOpenJournalLimit = Setting<Int>("fail-open-journal-limit", "Most calls the fail-open journal keeps before failing closed again",
                                                   in: 1...100_000_000, default: 100_000)

    // Event streams and alerts.
    static let eventsBuffer = Setting<Int>("events-buffer", "Events a stream subscriber may have waiting before it is disconnected as lagging",
                                           in: 1...1_000_000, default: 1024)
    static let eventsHeartbeat = Setting<Duration>("events-heartbeat", "Keep-alive interval of idle streams",
                                                   in: .seconds(1)...(.seconds(3600)), default: .seconds(15))
    static let eventsRetention = Setting<Duration>("events-retention", "How far back Last-Event-ID may resume",
                                                   in: .seconds(60)...(.seconds(30 * 24 * 3600)), default: .seconds(24 * 3600))
    static let eventsMaxStreams = Setting<Int>("events-max-streams", "Event streams (SSE and WebSocket) this process serves at once; more get 429",
                                               in: 1...1_000_000, default: 10_000)
    static let eventsMaxStreamsPerAccount = Setting<Int>(
        "events-max-streams-per-account", "Event streams the tokens of one account may hold open together, at most --events-max-streams; more get 429",
        in: 1...1_000_000, default: 32)
    static let alertWebhookURL = Setting<String>("alert-webhook-url", "URL that low-balance alerts are POSTed to", valueName: "url")
    static let alertWebhookSecret = Setting<String>("alert-webhook-secret", "Secret for the alert webhook's HMAC-SHA256 signature",
                                                    valueName: "secret")

    // The OpenAI-compatible metering proxy.
    static let openAIUpstream = Setting<String>("openai-upstream",
                                                "Base URL of the OpenAI-compatible upstream, e.g. https://api.openai.com/v1; serves /openai/v1/...",
                                                valueName: "url")
    static let openAIUpstreamKeyFile = Setting<String>("openai-upstream-key-file",
                                                       "File holding the upstream's API key (or the key itself in TOLLGATE_OPENAI_UPSTREAM_KEY)",
                                                       valueName: "path")
    /// The upstream's key itself: a variable only, never a flag that `ps` would show.
    static let openAIUpstreamKeyVariable = "TOLLGATE_OPENAI_UPSTREAM_KEY"
    static let openAIRoutes = Setting<String>("openai-routes", "JSON route table sending models to other upstreams; see docs/PROXY.md",
                                              valueName: "path")
    static let openAIDefaultMaxTokens = Setting<Int64>(
        "openai-default-max-tokens", "Output tokens held per choice for a call without max_tokens, and sent upstream as its bound",
        in: OpenAIProxyConfiguration.tokenSettingRange, default: OpenAIProxyConfiguration.defaultDefaultMaxOutputTokens)
    static let openAIImageTokens = Setting<Int64>("openai-image-tokens", "Input tokens held per image in a request",
                                                  in: OpenAIProxyConfiguration.tokenSettingRange, default: OpenAIProxyConfiguration.defaultImageTokens)
    static let openAIBatchTokens = Setting<Int64>("openai-batch-tokens", "A streamed call reports a batch every this many output tokens...",
                                                  in: OpenAIProxyConfiguration.tokenSettingRange, default: OpenAIProxyConfiguration.defaultBatchTokens)
    static let openAIBatchInterval = Setting<Duration>("openai-batch-interval", "...or this long after the last report",
                                                       in: .milliseconds(1)...(.seconds(3600)), default: OpenAIProxyConfiguration.defaultBatchInterval)
    static let openAIHoldTTL = Setting<Duration>("openai-hold-ttl", "TTL of a call's hold: an unsettled hold (a crash) expires after it",
                                                 in: .seconds(1)...(.seconds(7 * 24 * 3600)), default: OpenAIProxyConfiguration.defaultHoldTTL)
    static let openAIUpstreamTimeout = Setting<Duration>("openai-upstream-timeout", "Longest the upstream may stay silent, before its answer or mid-stream",
                                                         in: .milliseconds(1)...(.seconds(3600)), default: OpenAIProxyConfiguration.defaultUpstreamTimeout)
    static let openAIOnUpstreamFailure = Setting<String>(
        "openai-on-upstream-failure", "What an upstream failure charges: release (nothing but output delivered) or charge-input",
        choices: UpstreamFailurePolicy.allCases.map(\.rawValue), default: UpstreamFailurePolicy.release.rawValue)
    static let openAIStreamCost = Switch("openai-stream-cost", "Add the running cost to streams as SSE comments, which SDKs ignore")
}
