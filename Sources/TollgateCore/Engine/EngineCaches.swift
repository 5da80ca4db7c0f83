import Synchronization

/// What an engine remembers between calls, shared by every copy of it.
final class EngineCaches: Sendable {
    /// The price book as last read from Redis.
    let prices = Mutex(PriceBookState())
    /// Secret hash → (key id, account). Immutable once written, so entries never go stale;
    /// revocation is checked inside the atomic step, not here.
    let keys = Mutex([String: (KeyID, AccountID)]())
    /// Decisions whose reply never came (the caller was told 503), to be voided once Redis
    /// answers again (`Engine.retryPendingVoids()`).
    let pendingVoids = Mutex(PendingVoids())

    /// The longest the price book is used without a re-read: a change in Redis reaches every
    /// engine within this (plus one round trip). Past twice this, callers wait for a fresh copy.
    static let priceRefreshInterval: Duration = .milliseconds(500)
    /// Bounds the key directory; past it the cache starts over.
    static let maximumCachedKeys = 100_000
}

struct PriceBookState {
    var prices: [PriceKey: Price] = [:]
    var fetchedAt: ContinuousClock.Instant?
    var refreshing = false
}

/// Decisions to void, oldest first, each once; bounded (a void dropped when full is counted).
struct PendingVoids {
    static let capacity = 100_000
    var queue: [(AccountID, RequestID)] = []
    var dropped = 0

    mutating func add(_ account: AccountID, _ requestID: RequestID) {
        guard queue.count < Self.capacity else {
            dropped += 1
            return
        }
        queue.append((account, requestID))
    }
}
