import Hummingbird
import Synchronization

/// How often one account token may call the routes that cost Redis the most or leave state
/// behind (the usage breakdown and reports, starting deposits, redeeming coupons): at most
/// `maximumCalls` per `window`, then 429 `rate_limited` with `Retry-After` until the window
/// ends. A dashboard never comes near it; a script that loops does. The admin token is not
/// counted. In memory, per server, bounded, like the token-guessing limit.
final class AccountTokenQuota: Sendable {
    let maximumCalls: Int
    let window: Duration
    private let state = Mutex([String: Usage]())
    static var maximumTrackedTokens: Int { 100_000 }

    private struct Usage {
        var count: Int
        var since: ContinuousClock.Instant
    }

    /// The default: 120 such calls a minute per token.
    init(maximumCalls: Int = 120, window: Duration = .seconds(60)) {
        self.maximumCalls = maximumCalls
        self.window = window
    }

    /// Counts one call by the token with digest `token`; throws the 429 when it has none left.
    func admit(_ token: String) throws(APIError) {
        let now = ContinuousClock.now
        try state.withLock { tokens throws(APIError) in
            var usage = tokens[token] ?? Usage(count: 0, since: now)
            if usage.since.duration(to: now) >= window { usage = Usage(count: 0, since: now) }
            guard usage.count < maximumCalls else {
                let left = window - usage.since.duration(to: now)
                let seconds = max(1, Int((left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 999) / 1000))
                throw APIError(.tooManyRequests, "rate_limited", "this token made \(maximumCalls) such calls within \(window); try again later",
                               headers: [.retryAfter: String(seconds)])
            }
            if tokens[token] == nil, tokens.count >= Self.maximumTrackedTokens { tokens.removeAll() }
            usage.count += 1
            tokens[token] = usage
        }
    }
}
