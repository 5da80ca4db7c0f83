import Logging
import Metrics
import ServiceLifecycle
import Synchronization
import TollgateCore
import TollgateRedis

/// Fans the `tg:events` channel out to this process's stream subscribers.
///
/// One Redis subscription per process feeds every subscriber. Handing an event to a
/// subscriber never waits: each subscriber has a bounded buffer, and one whose buffer its own
/// events fill is marked lagging and its stream ended, so a slow or stuck subscriber costs
/// nothing but its own buffer, and decisions (which only `PUBLISH` inside Redis) never wait
/// for anyone. When the Redis subscription is lost and comes back, or drops messages, every
/// subscriber is told (`.gap`) so it can catch up from the ledger.
public final class EventHub: Service, Sendable {
    /// What a subscriber's stream carries.
    enum Item: Sendable {
        case event(AccountEvent)
        /// The subscription to Redis was lost and is back: events may have been missed.
        case gap
        /// Nothing happened for a while; streams send a keep-alive.
        case heartbeat
    }

    /// Which events a subscriber wants.
    struct Filter: Sendable {
        /// One account's events only (per-account streams).
        var account: AccountID?
        /// Accounts whose id starts with this (the firehose).
        var accountPrefix: String = ""
        /// Only these kinds (`debit`, `alert`...); empty for all.
        var kinds: Set<String> = []

        func matches(_ event: AccountEvent) -> Bool {
            if let account, account != event.account { return false }
            if !accountPrefix.isEmpty && !event.account.rawValue.utf8.starts(with: accountPrefix.utf8) { return false }
            return kinds.isEmpty || kinds.contains(event.kind.description)
        }
    }

    /// One subscriber's end: its stream of items, and whether it fell behind.
    ///
    /// Only the subscriber's own events can fill its buffer: a gap or a heartbeat waits in it
    /// at most once (another, while one waits, adds nothing: the one gap's catch-up from the
    /// ledger covers both). Drops of the Redis subscription under a flood of other accounts'
    /// events are each a gap for every subscriber; before, they piled up in a calm
    /// subscriber's buffer, behind a slow catch-up, until it was cut as lagging though it had
    /// missed none of its own events.
    final class Subscription: Sendable {
        let id: UInt64
        let filter: Filter
        private let stream: AsyncStream<Item>
        fileprivate let continuation: AsyncStream<Item>.Continuation
        private let lagState = Mutex<(lagged: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))
        /// A gap, a heartbeat, waiting in the buffer.
        private let gapWaiting = Atomic<Bool>(false)
        private let heartbeatWaiting = Atomic<Bool>(false)

        fileprivate init(id: UInt64, filter: Filter, bufferSize: Int) {
            self.id = id
            self.filter = filter
            (stream, continuation) = AsyncStream.makeStream(of: Item.self, bufferingPolicy: .bufferingOldest(bufferSize))
        }

        /// What the subscriber takes, in order (one consumer).
        var items: Items { Items(subscription: self) }

        /// The subscription's items; taking a gap or a heartbeat lets the next one be queued.
        struct Items: AsyncSequence, Sendable {
            typealias Element = Item
            fileprivate let subscription: Subscription

            struct AsyncIterator: AsyncIteratorProtocol {
                fileprivate var base: AsyncStream<Item>.AsyncIterator
                fileprivate let subscription: Subscription

                mutating func next() async -> Item? {
                    guard let item = await base.next() else { return nil }
                    switch item {
                    case .gap: subscription.gapWaiting.store(false, ordering: .sequentiallyConsistent)
                    case .heartbeat: subscription.heartbeatWaiting.store(false, ordering: .sequentiallyConsistent)
                    case .event: break
                    }
                    return item
                }
            }

            func makeAsyncIterator() -> AsyncIterator {
                AsyncIterator(base: subscription.stream.makeAsyncIterator(), subscription: subscription)
            }
        }

        /// Whether the buffer overflowed (the stream then ends after what it holds).
        var lagged: Bool { lagState.withLock { $0.lagged } }

        /// Hands over an item without waiting. A buffer full of the subscriber's own events
        /// marks it lagging; a heartbeat that does not fit is skipped.
        fileprivate func offer(_ item: Item) -> Offer {
            switch item {
            case .gap:
                guard !gapWaiting.exchange(true, ordering: .sequentiallyConsistent) else { return .delivered }
            case .heartbeat:
                guard !heartbeatWaiting.exchange(true, ordering: .sequentiallyConsistent) else { return .delivered }
            case .event:
                break
            }
            switch continuation.yield(item) {
            case .enqueued: return .delivered
            case .dropped:
                if case .heartbeat = item {
                    heartbeatWaiting.store(false, ordering: .sequentiallyConsistent)
                    return .delivered
                }
                let (first, waiters) = lagState.withLock { state -> (Bool, [CheckedContinuation<Void, Never>]) in
                    guard !state.lagged else { return (false, []) }
                    state.lagged = true
                    defer { state.waiters = [] }
                    return (true, state.waiters)
                }
                continuation.finish()
                for waiter in waiters { waiter.resume() }
                return first ? .lagged : .gone
            default: return .gone
            }
        }

        fileprivate enum Offer { case delivered, lagged, gone }

        /// Returns once the subscriber is lagging or cancelled.
        func waitUntilLagged() async {
            await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
                let already = lagState.withLock { state -> Bool in
                    if state.lagged { return true }
                    state.waiters.append(waiter)
                    return false
                }
                if already { waiter.resume() }
            }
        }

        /// Ends the subscription (the stream finishes; the hub forgets it).
        func cancel() {
            continuation.finish()
            let waiters = lagState.withLock { state -> [CheckedContinuation<Void, Never>] in
                defer { state.waiters = [] }
                return state.waiters
            }
            for waiter in waiters { waiter.resume() }
        }
    }

    private struct Registry {
        var nextID: UInt64 = 0
        var byAccount: [AccountID: [UInt64: Subscription]] = [:]
        var firehose: [UInt64: Subscription] = [:]
        var count = 0
    }

    /// Settings for the fan-out.
    public struct Configuration: Sendable {
        /// Items a subscriber may have waiting before it is cut off as lagging.
        public var bufferSize: Int
        /// How often idle streams get a keep-alive.
        public var heartbeat: Duration
        /// How far back (by the entry's time) a `Last-Event-ID` may resume; older ids get a
        /// fresh snapshot marked `reset`.
        public var retention: Duration
        /// Open streams (SSE and WebSocket) this process serves at once; more are refused (429).
        public var maxStreams: Int
        /// Open streams the tokens of one account may hold together; more are refused (429).
        /// The admin token is held only to `maxStreams`.
        public var maxStreamsPerAccount: Int

        public init(bufferSize: Int = 1024, heartbeat: Duration = .seconds(15), retention: Duration = .seconds(24 * 3600),
                    maxStreams: Int = 10_000, maxStreamsPerAccount: Int = 32) {
            precondition(bufferSize > 0, "a subscriber needs room for at least one event")
            precondition(heartbeat >= .milliseconds(1), "a heartbeat interval of zero would never stop sending")
            precondition(maxStreams > 0 && maxStreamsPerAccount > 0, "stream limits must allow at least one stream")
            self.bufferSize = bufferSize
            self.heartbeat = heartbeat
            self.retention = retention
            self.maxStreams = maxStreams
            self.maxStreamsPerAccount = maxStreamsPerAccount
        }
    }

    let configuration: Configuration
    private let redis: RedisConfiguration
    private let fallbackAddresses: [RedisAddress]
    private let registry = Mutex(Registry())
    private let logger: Logger
    /// Made on first use, after the server has bootstrapped the metrics system.
    private struct HubMetrics: Sendable {
        let delivered = Metrics.Counter(label: "tollgate_events_delivered_total")
        let received = Metrics.Counter(label: "tollgate_events_received_total")
        let lagged = Metrics.Counter(label: "tollgate_event_subscribers_lagged_total")
        let subscribers = Metrics.Gauge(label: "tollgate_event_subscribers")
    }
    private static let metrics = HubMetrics()
    private var delivered: Metrics.Counter { Self.metrics.delivered }
    private var received: Metrics.Counter { Self.metrics.received }
    private var laggedCounter: Metrics.Counter { Self.metrics.lagged }
    private var subscriberGauge: Metrics.Gauge { Self.metrics.subscribers }
    private let ready = Mutex<(isReady: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))
    /// Counts open streams against `maxStreams` and `maxStreamsPerAccount`.
    let streamLimits: StreamLimiter

    /// A hub that subscribes with its own connection to the Redis at `redis.address`; on a
    /// Redis Cluster, pass the other nodes as `fallbackAddresses` (any node delivers every event).
    public init(redis: RedisConfiguration, fallbackAddresses: [RedisAddress] = [], configuration: Configuration = .init(), logger: Logger) {
        self.redis = redis
        self.fallbackAddresses = fallbackAddresses
        self.configuration = configuration
        self.logger = logger
        self.streamLimits = StreamLimiter(total: configuration.maxStreams, perAccount: configuration.maxStreamsPerAccount)
    }

    /// Registers a subscriber. Events published from now on that match reach it.
    func subscribe(_ filter: Filter) -> Subscription {
        let subscription = registry.withLock { registry -> Subscription in
            registry.nextID += 1
            let made = Subscription(id: registry.nextID, filter: filter, bufferSize: configuration.bufferSize)
            if let account = filter.account {
                registry.byAccount[account, default: [:]][made.id] = made
            } else {
                registry.firehose[made.id] = made
            }
            registry.count += 1
            subscriberGauge.record(registry.count)
            return made
        }
        subscription.continuation.onTermination = { [weak self] _ in self?.remove(subscription.id, filter.account) }
        return subscription
    }

    /// Waits until the Redis subscription is up (so events published after this are seen).
    func waitUntilReady() async {
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let isReady = ready.withLock { state -> Bool in
                if !state.isReady { state.waiters.append(waiter) }
                return state.isReady
            }
            if isReady { waiter.resume() }
        }
    }

    private func remove(_ id: UInt64, _ account: AccountID?) {
        registry.withLock { registry in
            let removed: Subscription?
            if let account {
                removed = registry.byAccount[account]?.removeValue(forKey: id)
                if registry.byAccount[account]?.isEmpty == true { registry.byAccount[account] = nil }
            } else {
                removed = registry.firehose.removeValue(forKey: id)
            }
            if removed != nil { registry.count -= 1 }
            subscriberGauge.record(registry.count)
        }
    }

    /// Reads the Redis subscription until shutdown, and sends heartbeats.
    public func run() async throws {
        let subscriber = RedisSubscriber(configuration: redis, channels: [AccountEvent.channel],
                                         fallbackAddresses: fallbackAddresses, name: "tollgate-events")
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.heartbeats() }
                for await event in subscriber.events {
                    switch event {
                    case .subscribed(let resumed):
                        if resumed {
                            logger.warning("event subscription to Redis restored; streams catch up from the ledger")
                            broadcast(.gap)
                        }
                        let waiters = ready.withLock { state in
                            state.isReady = true
                            defer { state.waiters = [] }
                            return state.waiters
                        }
                        for waiter in waiters { waiter.resume() }
                    case .dropped(let count):
                        logger.warning("the event fan-out fell behind Redis and dropped \(count) messages; streams catch up from the ledger")
                        broadcast(.gap)
                    case .message(_, let payload):
                        guard let parsed = AccountEvent(message: payload) else {
                            logger.warning("unreadable event message on \(AccountEvent.channel)")
                            continue
                        }
                        received.increment()
                        dispatch(parsed)
                    }
                }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            subscriber.close()
        }
        // Shutting down: end every stream.
        let all = registry.withLock { registry in
            registry.firehose.values.map { $0 } + registry.byAccount.values.flatMap { $0.values }
        }
        for subscription in all { subscription.cancel() }
    }

    private func heartbeats() async {
        while !Task.isCancelled {
            do { try await Task.sleep(for: configuration.heartbeat) } catch { return }
            broadcast(.heartbeat)
        }
    }

    func dispatch(_ event: AccountEvent) {
        let targets = registry.withLock { registry -> [Subscription] in
            var targets: [Subscription] = []
            if let own = registry.byAccount[event.account] { targets.append(contentsOf: own.values) }
            for subscription in registry.firehose.values where subscription.filter.matches(event) {
                targets.append(subscription)
            }
            return targets
        }
        var count = 0
        for subscription in targets where subscription.filter.matches(event) {
            switch subscription.offer(.event(event)) {
            case .delivered: count += 1
            case .lagged: laggedCounter.increment()
            case .gone: break
            }
        }
        if count > 0 { delivered.increment(by: count) }
    }

    func broadcast(_ item: Item) {
        let all = registry.withLock { registry in
            registry.firehose.values.map { $0 } + registry.byAccount.values.flatMap { $0.values }
        }
        for subscription in all { _ = subscription.offer(item) }
    }
}
