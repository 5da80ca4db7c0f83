import Synchronization
import TollgateCore

/// The gateway's pending voids, kept in a file of the data folder (`pending-voids.journal`) as
/// well as in memory: a void is written before the caller is answered 503, and read back at
/// start, so a crash of `tollgate serve` while Redis is down does not leave a call charged that
/// the gateway was told was refused. Done voids leave the file when it is rewritten (every 256,
/// and when none is left); a void read back that was done already is done again, which replays
/// its first answer.
public final class PendingVoidJournal: PendingVoidStore {
    private struct Line: Codable {
        var account: String
        var request_id: String
    }

    private struct State {
        var queue: PendingVoidQueue
        var doneSinceRewrite = 0
    }

    private let file: JournalFile<Line>
    private let state: Mutex<State>

    /// Opens (or creates) the journal at `path`, reading back the voids not yet done.
    public init(path: String) throws {
        file = try JournalFile(path: path)
        let voids = file.read().compactMap { line -> PendingVoid? in
            guard let account = try? AccountID(line.account), let requestID = try? RequestID(line.request_id) else { return nil }
            return PendingVoid(account: account, requestID: requestID)
        }
        state = Mutex(State(queue: PendingVoidQueue(voids)))
    }

    public func add(_ void: PendingVoid) {
        state.withLock { state in
            // Kept in memory even if the file cannot be written: the void still happens unless
            // the process ends first.
            if state.queue.add(void) { _ = file.append(Line(account: void.account.rawValue, request_id: void.requestID.rawValue)) }
        }
    }

    public func first() -> PendingVoid? { state.withLock { $0.queue.items.first } }

    public func removeFirst(_ void: PendingVoid) {
        state.withLock { state in
            guard state.queue.removeFirst(void) else { return }
            state.doneSinceRewrite += 1
            if state.queue.items.isEmpty || state.doneSinceRewrite >= 256 {
                state.doneSinceRewrite = 0
                file.rewrite(state.queue.items.map { Line(account: $0.account.rawValue, request_id: $0.requestID.rawValue) })
            }
        }
    }

    public var counts: (waiting: Int, dropped: Int) { state.withLock { ($0.queue.items.count, $0.queue.dropped) } }
}
