import Metrics
import Prometheus
import TollgateCore
import TollgateRedis

/// The server's metrics, through swift-metrics; `/metrics` renders the Prometheus registry.
final class ServerMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    private let decisions = LabeledCounters("tollgate_decisions_total")
    private let latency: Metrics.Timer
    private let redisErrors = LabeledCounters("tollgate_redis_errors_total")
    private let pipelineDepth: Metrics.Gauge
    private let failOpen = Metrics.Counter(label: "tollgate_fail_open_total")
    private let pendingVoids = Metrics.Gauge(label: "tollgate_pending_voids")
    private let droppedVoids = Metrics.Gauge(label: "tollgate_dropped_voids")
    private let journalEntries = Metrics.Gauge(label: "tollgate_fail_open_journal_entries")
    let journalReplayed = Metrics.Counter(label: "tollgate_fail_open_replayed_total")
    let journalDropped = Metrics.Counter(label: "tollgate_fail_open_dropped_total")
    let voided = Metrics.Counter(label: "tollgate_voids_total")
    /// Requests (or new connections that sent nothing) not read within `--request-timeout`.
    let requestTimeouts = Metrics.Counter(label: "tollgate_request_timeouts_total")

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        latency = Metrics.Timer(label: "tollgate_decision_duration_seconds", preferredDisplayUnit: .seconds)
        pipelineDepth = Metrics.Gauge(label: "tollgate_redis_pipeline_depth")
    }

    /// Counts a decision by outcome and reason, and records how long it took.
    func record(_ decision: Decision, since start: ContinuousClock.Instant) {
        let outcome = decision.allowed ? "allowed" : "denied"
        let reason = decision.reason?.rawValue ?? "none"
        decisions.increment([("outcome", outcome), ("reason", reason)])
        latency.recordInterval(since: start)
    }

    /// Counts a failure to reach Redis (`unavailable`, `timeout`) or an error it returned.
    func recordRedisError(_ error: TollgateError) {
        let kind = error.code == .redisUnavailable ? (error.message.contains("timed out") || error.message.contains("timeout") ? "timeout" : "unavailable") : "error"
        redisErrors.increment([("kind", kind)])
    }

    /// Counts a call allowed without Redis (`--fail-open`).
    func recordFailOpen() { failOpen.increment() }

    /// The Prometheus text, with the pipeline depth, voids waiting and journal size read now.
    func render(redis: RedisClient, engine: Engine? = nil, journal: FailOpenJournal? = nil) -> [UInt8] {
        pipelineDepth.record(redis.outstandingCommands)
        if let engine {
            let voids = engine.pendingVoids
            pendingVoids.record(voids.waiting)
            droppedVoids.record(voids.dropped)
        }
        if let journal { journalEntries.record(journal.count) }
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
