import Synchronization

/// A decision to void once Redis answers again: the caller was told it did not happen
/// (503), but Redis may have applied it.
public struct PendingVoid: Sendable, Hashable {
    public var account: AccountID
    public var requestID: RequestID

    public init(account: AccountID, requestID: RequestID) {
        self.account = account
        self.requestID = requestID
    }
}

/// Where an engine keeps the decisions it must void (`Engine.retryPendingVoids()`), oldest
/// first, each once, bounded. In memory by default; `tollgate serve` keeps them in a file of
/// its data folder, so a crash while Redis is down does not leave a refused call charged.
public protocol PendingVoidStore: Sendable {
    /// Keeps a void until it is done; when the store is full it is dropped and counted.
    func add(_ void: PendingVoid)
    /// The oldest void waiting.
    func first() -> PendingVoid?
    /// Forgets `void` (it was done) if it is still the oldest.
    func removeFirst(_ void: PendingVoid)
    /// How many wait, and how many were dropped because the store was full.
    var counts: (waiting: Int, dropped: Int) { get }
}

/// The bounded queue behind every `PendingVoidStore`.
public struct PendingVoidQueue: Sendable {
    /// The most voids kept.
    public static let capacity = 100_000
    public private(set) var items: [PendingVoid]
    public private(set) var dropped = 0

    public init(_ items: [PendingVoid] = []) {
        self.items = Array(items.prefix(Self.capacity))
    }

    /// Appends `void`; false (and counted as dropped) when full.
    public mutating func add(_ void: PendingVoid) -> Bool {
        guard items.count < Self.capacity else {
            dropped += 1
            return false
        }
        items.append(void)
        return true
    }

    /// Removes the oldest void if it is `void`; whether it did.
    public mutating func removeFirst(_ void: PendingVoid) -> Bool {
        guard items.first == void else { return false }
        items.removeFirst()
        return true
    }
}

/// Pending voids in memory: gone if the process ends.
public final class InMemoryPendingVoids: PendingVoidStore {
    private let queue = Mutex(PendingVoidQueue())

    public init() {}

    public func add(_ void: PendingVoid) { queue.withLock { _ = $0.add(void) } }
    public func first() -> PendingVoid? { queue.withLock { $0.items.first } }
    public func removeFirst(_ void: PendingVoid) { queue.withLock { _ = $0.removeFirst(void) } }
    public var counts: (waiting: Int, dropped: Int) { queue.withLock { ($0.items.count, $0.dropped) } }
}
