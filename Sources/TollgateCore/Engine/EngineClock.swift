import Foundation
import Synchronization

/// Where the engine takes "now" from. Scripts get it as an argument, never from Redis'
/// `TIME` (I6), so tests can drive time.
public protocol EngineClock: Sendable {
    /// Milliseconds since the Unix epoch.
    func nowMilliseconds() -> Int64
}

/// The wall clock.
public struct SystemEngineClock: EngineClock {
    public init() {}
    public func nowMilliseconds() -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
    }
}

/// A clock that moves only when told to: for tests and simulations.
public final class ManualEngineClock: EngineClock {
    private let now: Mutex<Int64>

    /// Starts at `milliseconds` since the epoch.
    public init(milliseconds: Int64 = 1_767_225_600_000) {
        now = Mutex(milliseconds)
    }

    public func nowMilliseconds() -> Int64 { now.withLock { $0 } }

    /// Moves the clock forward (or back, with a negative duration).
    public func advance(by duration: Duration) {
        now.withLock { $0 += duration.wholeMilliseconds }
    }

    /// Sets the clock.
    public func set(milliseconds: Int64) {
        now.withLock { $0 = milliseconds }
    }
}

extension Duration {
    /// The duration in whole milliseconds, rounded toward zero.
    public var wholeMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
