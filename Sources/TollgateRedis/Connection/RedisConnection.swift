import Foundation
import Synchronization

/// One Redis connection driven by a dedicated I/O thread.
///
/// Callers enqueue encoded commands and suspend; the thread takes everything queued since its
/// last turn, writes it as one pipeline, reads the replies in order and resumes each caller.
/// A lone caller therefore gets a plain round trip, while many concurrent callers share
/// pipelines with no batching delay. hiredis only ever runs on this thread.
///
/// On any I/O failure or timeout the connection is dropped: the commands whose replies were
/// not read get `connectionClosed`/`timeout` (their outcome is unknown), and the next batch
/// connects afresh, so a late reply can never be handed to the wrong caller.
final class RedisConnection: Sendable {
    private struct Pending {
        let command: RedisCommand
        /// Sends `ASKING` right before the command, in the same pipeline (a cluster's `ASK`).
        let asking: Bool
        let continuation: UnsafeContinuation<Result<RESPValue, RedisError>, Never>
    }

    private struct Queue {
        var pending: [Pending] = []
        var closed = false
    }

    private let configuration: RedisConfiguration
    private let queue: Mutex<Queue> = Mutex(Queue())
    /// Wakes the I/O thread; signalled once per enqueue while the thread may sleep.
    private let wakeup = NSCondition()
    /// Commands enqueued and not yet answered; the pool uses it to pick the least busy connection.
    let outstanding = Atomic<Int>(0)
    /// State only the I/O thread touches.
    private let io: IOState

    private final class IOState: @unchecked Sendable {
        var context: HiredisContext?
        var lastConnectFailure: (at: ContinuousClock.Instant, error: RedisError)?
    }

    init(configuration: RedisConfiguration, name: String) {
        self.configuration = configuration
        self.io = IOState()
        let thread = Thread { [self] in self.runLoop() }
        thread.name = name
        thread.start()
    }

    /// Sends one command and waits for its reply (an error reply is returned as `.error`).
    /// With `asking`, `ASKING` goes first on the same connection, immediately before it.
    func send(_ command: RedisCommand, asking: Bool = false) async -> Result<RESPValue, RedisError> {
        outstanding.add(1, ordering: .relaxed)
        return await withUnsafeContinuation { continuation in
            let accepted = queue.withLock { state -> Bool in
                guard !state.closed else { return false }
                state.pending.append(Pending(command: command, asking: asking, continuation: continuation))
                return true
            }
            if accepted {
                wakeup.lock()
                wakeup.signal()
                wakeup.unlock()
            } else {
                outstanding.subtract(1, ordering: .relaxed)
                continuation.resume(returning: .failure(RedisError(.clientClosed, "the Redis client was shut down")))
            }
        }
    }

    /// Stops the I/O thread after the commands already queued are answered.
    func close() {
        queue.withLock { $0.closed = true }
        wakeup.lock()
        wakeup.signal()
        wakeup.unlock()
    }

    private func runLoop() {
        Self.blockBrokenPipeSignal()
        while true {
            var batch: [Pending] = []
            var closing = false
            wakeup.lock()
            while true {
                (batch, closing) = queue.withLock { state in
                    let taken = state.pending
                    state.pending.removeAll(keepingCapacity: true)
                    return (taken, state.closed)
                }
                if !batch.isEmpty || closing { break }
                wakeup.wait()
            }
            wakeup.unlock()
            if !batch.isEmpty { process(batch) }
            if closing && batch.isEmpty { break }
        }
        io.context = nil
    }

    /// hiredis writes with `write(2)`, and writing to a connection the server has closed (a
    /// restart, a unix socket whose peer is gone) raises SIGPIPE, whose default action kills the
    /// whole process. Blocking it on this thread, the only one that touches the socket, turns it
    /// into an EPIPE error that fails the batch with `connectionClosed`; the signal is directed
    /// at this thread and stays pending, never delivered. No process-wide state changes.
    private static func blockBrokenPipeSignal() {
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &signals, nil)
    }

    private func process(_ batch: [Pending]) {
        let context: HiredisContext
        switch connectedContext() {
        case .success(let connected): context = connected
        case .failure(let error):
            for pending in batch { finish(pending, .failure(error)) }
            return
        }
        for pending in batch {
            if pending.asking { context.append(Self.asking) }
            context.append(pending.command)
        }
        var answered = 0
        do {
            while answered < batch.count {
                if batch[answered].asking { _ = try context.readReply() }
                let reply = try context.readReply()
                finish(batch[answered], .success(reply))
                answered += 1
            }
        } catch {
            io.context = nil
            for pending in batch[answered...] { finish(pending, .failure(error)) }
        }
    }

    private static let asking = RedisCommand("ASKING")

    private func connectedContext() -> Result<HiredisContext, RedisError> {
        if let context = io.context { return .success(context) }
        if let failure = io.lastConnectFailure, failure.at.duration(to: .now) < configuration.reconnectBackoff {
            return .failure(failure.error)
        }
        do {
            let context = try HiredisContext.connect(to: configuration)
            io.context = context
            io.lastConnectFailure = nil
            return .success(context)
        } catch {
            io.lastConnectFailure = (.now, error)
            return .failure(error)
        }
    }

    private func finish(_ pending: Pending, _ result: Result<RESPValue, RedisError>) {
        outstanding.subtract(1, ordering: .relaxed)
        pending.continuation.resume(returning: result)
    }
}
