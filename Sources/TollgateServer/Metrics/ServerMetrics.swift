import Metrics
import Prometheus
import Synchronization
import TollgateCore
import TollgateRedis

/// The server's metrics, through swift-metrics; `/metrics` renders the Prometheus registry.
final class ServerMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    private let decisions = Mutex([String: Metrics.Counter]())
    private let latency: Metrics.Timer
    private let redisErrors = Mutex([String: Metrics.Counter]())
    private let pipelineDepth: Metrics.Gauge

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        latency = Metrics.Timer(label: "tollgate_decision_duration_seconds", preferredDisplayUnit: .seconds)
        pipelineDepth = Metrics.Gauge(label: "tollgate_redis_pipeline_depth")
    }

    /// Counts a decision by outcome and reason, and records how long it took.
    func record(_ decision: Decision, since start: ContinuousClock.Instant) {
        let outcome = decision.allowed ? "allowed" : "denied"
        let reason = decision.reason?.rawValue ?? "none"
        let key = outcome + "/" + reason
        let counter = decisions.withLock { counters in
            if let existing = counters[key] { return existing }
            let made = Metrics.Counter(label: "tollgate_decisions_total", dimensions: [("outcome", outcome), ("reason", reason)])
            counters[key] = made
            return made
        }
        counter.increment()
        latency.recordInterval(since: start)
    }

    /// Counts a failure to reach Redis (`unavailable`, `timeout`) or an error it returned.
    func recordRedisError(_ error: TollgateError) {
        let kind = error.code == .redisUnavailable ? (error.message.contains("timed out") || error.message.contains("timeout") ? "timeout" : "unavailable") : "error"
        let counter = redisErrors.withLock { counters in
            if let existing = counters[kind] { return existing }
            let made = Metrics.Counter(label: "tollgate_redis_errors_total", dimensions: [("kind", kind)])
            counters[kind] = made
            return made
        }
        counter.increment()
    }

    /// The Prometheus text, with the pipeline depth read now.
    func render(redis: RedisClient) -> [UInt8] {
        pipelineDepth.record(redis.outstandingCommands)
        return registry.emitToBuffer()
    }
}

extension Metrics.Timer {
    func recordInterval(since start: ContinuousClock.Instant) {
        let elapsed = start.duration(to: .now)
        let (seconds, attoseconds) = elapsed.components
        recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
