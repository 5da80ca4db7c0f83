import Foundation
import Synchronization

/// A Redis pub/sub subscription on a connection of its own, read by a dedicated thread.
///
/// The thread connects, subscribes to the channels and delivers what arrives through
/// `events`, an `AsyncSequence` that buffers without bound (its consumer is expected to keep
/// up; a consumer that must not fall behind should hand messages on without waiting). It
/// sends `PING` when the connection is quiet and treats a missing answer as a lost
/// connection. Whenever the connection is lost it reconnects and subscribes again, and says
/// so with `.subscribed(resumed: true)`: messages published while it was away are lost, so a
/// consumer that cannot lose any catches up from durable storage at that point.
public final class RedisSubscriber: Sendable {
    /// What a subscription delivers.
    public enum Event: Sendable, Hashable {
        /// Every channel is subscribed; `resumed` after a reconnect (messages may have been missed).
        case subscribed(resumed: Bool)
        /// A message published on one of the channels.
        case message(channel: String, payload: [UInt8])
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

    /// Starts subscribing to `channels` at once (on the subscriber's own thread).
    ///
    /// `fallbackAddresses` are tried in turn when the connection to the current address fails:
    /// on a Redis Cluster every node delivers every `PUBLISH`, so any node will do, and the
    /// subscription survives the loss of one.
    public init(configuration: RedisConfiguration, channels: [String], fallbackAddresses: [RedisAddress] = [],
                pingInterval: Duration = .seconds(5), name: String = "tollgate-redis-subscriber") {
        precondition(!channels.isEmpty, "a subscription needs at least one channel")
        self.configuration = configuration
        self.addresses = [configuration.address] + fallbackAddresses.filter { $0 != configuration.address }
        self.channels = channels
        self.pingInterval = pingInterval
        (events, continuation) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .unbounded)
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
            while let reply = try context.bufferedReply() {
                lastHeard = .now
                pingSent = nil
                guard let parts = reply.array, let kind = parts.first?.string else { continue }
                switch kind {
                case "message" where parts.count == 3:
                    continuation.yield(.message(channel: parts[1].string ?? "", payload: parts[2].bytes ?? []))
                case "subscribe":
                    confirmed += 1
                    if confirmed == channels.count {
                        onSubscribed()
                        continuation.yield(.subscribed(resumed: resumed))
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
