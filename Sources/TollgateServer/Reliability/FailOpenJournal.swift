import Foundation
import Synchronization
import TollgateCore

/// `--fail-open`: the calls allowed while Redis could not answer, kept in a local append-only
/// file (one JSON line each) and in memory, bounded, until they are replayed as idempotent
/// debits (`Engine.journalDebit`) once Redis is back. A line is written before the call is
/// answered, so a call allowed is a call journaled, across a crash of `tollgate serve` too
/// (the file is read back at start).
public final class FailOpenJournal: Sendable {
    /// One call allowed without Redis.
    public struct Entry: Codable, Sendable, Hashable {
        /// The account charged.
        public var account: String
        /// The API key's id, "" when the gateway named the account.
        public var key_id: String
        /// What the call used.
        public var usage: [Line]
        /// The gateway's request id: the replay uses it, so the call is charged once.
        public var request_id: String
        /// When it was allowed, ms since the epoch.
        public var time: Int64

        /// One usage item.
        public struct Line: Codable, Sendable, Hashable {
            /// The meter, e.g. `tokens.input`.
            public var meter: String
            /// The model, when prices differ per model.
            public var model: String?
            /// Units of the meter.
            public var quantity: Int64
        }

        /// An entry for a call by `account` (through API key `keyID`, "" when the gateway named the account).
        public init(account: AccountID, keyID: String, usage: [UsageItem], requestID: RequestID, time: Int64) {
            self.account = account.rawValue
            self.key_id = keyID
            self.usage = usage.map { Line(meter: $0.key.meter, model: $0.key.model, quantity: $0.quantity) }
            self.request_id = requestID.rawValue
            self.time = time
        }

        func items() throws(TollgateError) -> [UsageItem] {
            var items: [UsageItem] = []
            for line in usage { items.append(try UsageItem(meter: line.meter, model: line.model, quantity: line.quantity)) }
            return items
        }
    }

    /// The file the journal lives in.
    public let path: String
    /// The most entries kept; when full, calls fail closed again.
    public let capacity: Int
    private let file: JournalFile<Entry>
    private let state: Mutex<[Entry]>
    private let replaying = Mutex(false)

    /// Opens (or creates) the journal at `path`, reading back entries not yet replayed.
    public init(path: String, capacity: Int) throws {
        self.path = path
        self.capacity = capacity
        file = try JournalFile(path: path)
        let entries = file.read()
        state = Mutex(entries)
    }

    /// Entries waiting to be replayed.
    public var count: Int { state.withLock { $0.count } }

    /// Appends an entry (to the file first); false when the journal is full or cannot be
    /// written, and the call must then fail closed.
    public func append(_ entry: Entry) -> Bool {
        state.withLock { entries in
            guard entries.count < capacity, file.append(entry) else { return false }
            entries.append(entry)
            return true
        }
    }

    /// Replays every entry in order with `engine`; stops at the first that Redis cannot take
    /// now (it stays for the next try). Entries Redis refuses for good (an account gone, an
    /// unknown meter) are dropped and counted. Returns (replayed, dropped).
    public func replay(with engine: Engine) async -> (replayed: Int, dropped: Int) {
        guard replaying.withLock({ busy in
            if busy { return false }
            busy = true
            return true
        }) else { return (0, 0) }
        defer { replaying.withLock { $0 = false } }
        var replayed = 0
        var dropped = 0
        while let entry = state.withLock({ $0.first }) {
            do {
                let decision = try await engine.journalDebit(
                    try AccountID(entry.account), keyID: entry.key_id, usage: try entry.items(),
                    requestID: try RequestID(entry.request_id))
                if decision.allowed { replayed += 1 } else { dropped += 1 }
            } catch where error.code == .redisUnavailable {
                break
            } catch {
                dropped += 1
            }
            let done = replayed + dropped
            state.withLock { entries in
                if entries.first == entry { entries.removeFirst() }
                // Now and then, and at the end, rewrite the file with what is left: a crash
                // replays at most what was done since, and a replay twice is a replay (same
                // request id, same fingerprint).
                if done % 256 == 0 { file.rewrite(entries) }
            }
        }
        _ = state.withLock { file.rewrite($0) }
        return (replayed, dropped)
    }
}
