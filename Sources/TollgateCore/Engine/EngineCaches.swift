import Synchronization

/// What an engine remembers between calls, shared by every copy of it.
final class EngineCaches: Sendable {
    /// The price book as last read from Redis.
    let prices = Mutex(PriceBookState())
    /// Secret hash → (key id, account). Immutable once written, so entries never go stale;
    /// revocation is checked inside the atomic step, not here.
    let keys = Mutex([String: (KeyID, AccountID)]())

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
