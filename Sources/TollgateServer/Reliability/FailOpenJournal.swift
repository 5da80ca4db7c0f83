import Foundation
import Synchronization
import TollgateCore
#if canImport(Glibc)
import Glibc
#endif

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
    private let state: Mutex<[Entry]>
    private let replaying = Mutex(false)

    /// Opens (or creates) the journal at `path`, reading back entries not yet replayed.
    public init(path: String, capacity: Int) throws {
        self.path = path
        self.capacity = capacity
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        var entries: [Entry] = []
        if let data = FileManager.default.contents(atPath: path) {
            let decoder = JSONDecoder()
            for line in data.split(separator: UInt8(ascii: "\n")) where !line.isEmpty {
                // A line cut short by a crash mid-write is the only kind that can fail; skip it.
                if let entry = try? decoder.decode(Entry.self, from: Data(line)) { entries.append(entry) }
            }
        }
        state = Mutex(entries)
    }

    /// Entries waiting to be replayed.
    public var count: Int { state.withLock { $0.count } }

    /// Appends an entry (to the file first); false when the journal is full or cannot be
    /// written, and the call must then fail closed.
    public func append(_ entry: Entry) -> Bool {
        guard var line = try? JSONEncoder().encode(entry) else { return false }
        line.append(UInt8(ascii: "\n"))
        return state.withLock { entries in
            guard entries.count < capacity, Self.write(line, to: path) else { return false }
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
                if done % 256 == 0 { _ = Self.rewrite(entries, to: path) }
            }
        }
        state.withLock { _ = Self.rewrite($0, to: path) }
        return (replayed, dropped)
    }

    private static func write(_ bytes: Data, to path: String) -> Bool {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        return bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(descriptor, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 { if errno == EINTR { continue }; return false }
                offset += n
            }
            return true
        }
    }

    private static func rewrite(_ entries: [Entry], to path: String) -> Bool {
        let encoder = JSONEncoder()
        var data = Data()
        for entry in entries {
            guard let line = try? encoder.encode(entry) else { continue }
            data.append(line)
            data.append(UInt8(ascii: "\n"))
        }
        let temporary = path + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: data, attributes: [.posixPermissions: 0o600]) else { return false }
        return rename(temporary, path) == 0
    }
}
