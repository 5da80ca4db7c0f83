import Foundation
import Synchronization

/// A Redis pub/sub subscription on a connection of its own, read by a dedicated thread.
///
/// The thread connects, subscribes to the channels and delivers what arrives through
/// `events`, an `AsyncSequence` holding at most `bufferLimit` undelivered events. A consumer
/// that falls that far behind loses messages: the overflow is dropped and, as soon as there is
/// room again, `.dropped(count:)` says so (after every message that was kept), so a consumer
/// that cannot lose any catches up from durable storage at that point. It sends `PING` when
/// the connection is quiet and treats a missing answer as a lost connection. Whenever the
/// connection is lost it reconnects and subscribes again, and says so with
/// `.subscribed(resumed: true)`: messages published while it was away are lost too.
public final class RedisSubscriber: Sendable {
    /// What a subscription delivers.
    public enum Event: Sendable, Hashable {
        /// Every channel is subscribed; `resumed` after a reconnect (messages may have been missed).
        case subscribed(resumed: Bool)
        /// A message published on one of the channels.
        case message(channel: String, payload: [UInt8])
        /// The consumer fell `bufferLimit` events behind and `count` messages were dropped
        /// (the events before this one are complete; the dropped ones were published after them).
        case dropped(count: Int)
    }

    /// The subscription's events, in the order Redis sent them. Ends after `close()`.
    public let events: AsyncStream<Event>
    private let continuation: AsyncStream<Event>.Continuation
    private let closed = Atomic<Bool>(false)
    private let configuration: RedisConfiguration
    /// Every address to try, `configuration.address` first; the next is tried after a failure.
    private let addresses: [RedisAddress]
    private let channels: [String]
    /// How long a quiet connection waits before it is checked with `PING`.
    private let pingInterval: Duration
    /// Messages dropped for want of room and not yet reported (only the thread touches it).
    private let undeliveredDrops = Atomic<Int>(0)

    /// Starts subscribing to `channels` at once (on the subscriber's own thread). At most
    /// `bufferLimit` events wait for the consumer; beyond that, messages are dropped and reported.
    ///
    /// `fallbackAddresses` are tried in turn when the connection to the current address fails:
    /// on a Redis Cluster every node delivers every `PUBLISH`, so any node will do, and the
    /// subscription survives the loss of one.
    public init(configuration: RedisConfiguration, channels: [String], fallbackAddresses: [RedisAddress] = [],
                pingInterval: Duration = .seconds(5), bufferLimit: Int = 10_000, name: String = "tollgate-redis-subscriber") {
        precondition(!channels.isEmpty, "a subscription needs at least one channel")
        precondition(bufferLimit > 0, "the subscriber needs room for at least one event")
        self.configuration = configuration
        self.addresses = [configuration.address] + fallbackAddresses.filter { $0 != configuration.address }
        self.channels = channels
        self.pingInterval = pingInterval
        (events, continuation) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .bufferingOldest(bufferLimit))
        let thread = Thread { [self] in self.run() }
        thread.name = name
        thread.start()
    }

    deinit {
        close()
    }

    /// Unsubscribes: the thread drops the connection within a fraction of a second and
    /// `events` ends.
    public func close() {
        closed.store(true, ordering: .relaxed)
    }

    private var isClosed: Bool { closed.load(ordering: .relaxed) }

    /// Hands `event` to the consumer without waiting. While drops are unreported, the report
    /// goes first, and nothing is delivered until it could be (so no message ever arrives
    /// after a later one was dropped without the report in between).
    private func deliver(_ event: Event) {
        guard reportDrops() else {
            undeliveredDrops.add(1, ordering: .relaxed)
            return
        }
        if case .dropped = continuation.yield(event) {
            undeliveredDrops.add(1, ordering: .relaxed)
        }
    }

    /// Reports unreported drops if there is room; returns whether none remain unreported.
    private func reportDrops() -> Bool {
        let count = undeliveredDrops.load(ordering: .relaxed)
        guard count > 0 else { return true }
        switch continuation.yield(.dropped(count: count)) {
        case .enqueued:
            undeliveredDrops.store(0, ordering: .relaxed)
            return true
        case .dropped:
            return false
        default:
            return true  // the stream has ended: nobody is listening
        }
    }

    private func run() {
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &signals, nil)
        var everSubscribed = false
        var failures = 0
        var current = 0
        while !isClosed {
            do {
                var settings = configuration
                settings.address = addresses[current % addresses.count]
                try session(settings, resumed: everSubscribed) { everSubscribed = true; failures = 0 }
            } catch {
                failures += 1
                current += 1
                // Back off a little (up to a second) between attempts, checking for close.
                let pause = min(1000, 50 * failures)
                var waited = 0
                while waited < pause && !isClosed {
                    usleep(10_000)
                    waited += 10
                }
            }
        }
        continuation.finish()
    }

    /// One connection's life: subscribe, then read until closed or the connection fails.
    private func session(_ configuration: RedisConfiguration, resumed: Bool, onSubscribed: () -> Void) throws(RedisError) {
        let context = try HiredisContext.connect(to: configuration)
        context.append(RedisCommand(["SUBSCRIBE"] + channels))
        try context.flush()
        var confirmed = 0
        var lastHeard = ContinuousClock.now
        var pingSent: ContinuousClock.Instant?
        while !isClosed {
            _ = reportDrops()  // once the consumer has made room
            while let reply = try context.bufferedReply() {
                lastHeard = .now
                pingSent = nil
                guard let parts = reply.array, let kind = parts.first?.string else { continue }
                switch kind {
                case "message" where parts.count == 3:
                    deliver(.message(channel: parts[1].string ?? "", payload: parts[2].bytes ?? []))
                case "subscribe":
                    confirmed += 1
                    if confirmed == channels.count {
                        onSubscribed()
                        deliver(.subscribed(resumed: resumed))
                    }
                default:
                    break  // "pong" and anything else only prove the connection is alive
                }
            }
            if try context.readAvailable(waitingUpTo: 100) { continue }
            let quiet = lastHeard.duration(to: .now)
            if let pingSent {
                if pingSent.duration(to: .now) > configuration.commandTimeout {
                    throw RedisError(.timeout, "the subscriber's PING was not answered in time")
                }
            } else if quiet > pingInterval {
                context.append(RedisCommand(["PING"]))
                try context.flush()
                pingSent = .now
            }
        }
    }
}
