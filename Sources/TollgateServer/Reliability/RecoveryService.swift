import Logging
import ServiceLifecycle
import TollgateCore

/// Puts things right once Redis answers again, by itself: voids the decisions whose reply
/// never came (they were answered 503), and replays the `--fail-open` journal. Tries every
/// 50 ms while there is work; idle otherwise. One more pass at shutdown.
public struct RecoveryService: Service {
    let engine: Engine
    let journal: FailOpenJournal?
    let metrics: ServerMetricsHandle
    let logger: Logger

    /// A service voiding `engine`'s unanswered decisions and replaying `journal` (if any).
    public init(engine: Engine, journal: FailOpenJournal?, metrics: ServerMetricsHandle, logger: Logger) {
        self.engine = engine
        self.journal = journal
        self.metrics = metrics
        self.logger = logger
    }

    /// Runs until shutdown, then makes one last pass.
    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            await pass()
            try? await Task.sleep(for: .milliseconds(50))
        }
        await pass()
    }

    /// One round of voids, then journal replays.
    func pass() async {
        if engine.pendingVoids.waiting > 0 {
            let voided = await engine.retryPendingVoids()
            if voided > 0 {
                metrics.metrics.voided.increment(by: voided)
                logger.info("voided decisions that were answered 503", metadata: ["count": "\(voided)"])
            }
        }
        if let journal, journal.count > 0 {
            let (replayed, dropped) = await journal.replay(with: engine)
            if replayed > 0 { metrics.metrics.journalReplayed.increment(by: replayed) }
            if dropped > 0 {
                metrics.metrics.journalDropped.increment(by: dropped)
                logger.warning("fail-open journal entries refused by the engine", metadata: ["count": "\(dropped)"])
            }
            if replayed > 0 { logger.info("replayed the fail-open journal", metadata: ["count": "\(replayed)"]) }
        }
    }
}

/// The server's metrics, as a handle a `RecoveryService` shares with the HTTP application.
public struct ServerMetricsHandle: Sendable {
    let metrics: ServerMetrics
}
