import Histogram
import Synchronization

/// What one worker measured; merged into the run's totals at the end (no sharing while running).
struct WorkerRecord: Sendable {
    /// The longest latency the histogram holds, in microseconds (120 s); longer ones are
    /// recorded as this and counted in `clamped`.
    static let latencyCeiling: UInt64 = 120_000_000
    /// Latency of every answered call, in microseconds (failed calls are counted in `errors`,
    /// not timed).
    var latency = Histogram<UInt64>(highestTrackableValue: latencyCeiling, numberOfSignificantValueDigits: .three)
    /// Latencies longer than the histogram holds, recorded as its ceiling.
    var clamped = 0
    /// When the first request was sent.
    var firstSend: ContinuousClock.Instant?
    /// When the last decision that came back by the deadline did.
    var lastCompletion: ContinuousClock.Instant?
    /// Decisions answered by the deadline (those the throughput counts).
    var decisionsByDeadline = 0
    /// Decisions answered after the deadline (stragglers).
    var decisionsAfterDeadline = 0
    /// Open loop: requests sent (each at or after its due time).
    var sent = 0
    /// Gateway decisions allowed.
    var allowed = 0
    /// Gateway decisions refused, by reason.
    var denied: [String: Int] = [:]
    /// Failed calls (timeouts, HTTP errors, dropped connections), by a short description.
    var errors: [String: Int] = [:]
    /// Calls made, by kind (`authorize`, `report`, `settle`, `topup`, `redeem`).
    var calls: [String: Int] = [:]
    /// Streams completed (hold, reports, settle).
    var streams = 0
    /// Coupons redeemed.
    var redemptions = 0
    /// What was applied, for the books check.
    var books = Books()

    mutating func latency(since start: ContinuousClock.Instant, now: ContinuousClock.Instant) {
        let (seconds, attoseconds) = (now - start).components
        let micros = UInt64(max(0, seconds * 1_000_000 + attoseconds / 1_000_000_000_000))
        if micros > Self.latencyCeiling || !latency.record(micros) {
            clamped += 1
            _ = latency.record(Self.latencyCeiling)
        }
    }

    /// A send at `instant`.
    mutating func sending(at instant: ContinuousClock.Instant) {
        if firstSend.map({ instant < $0 }) ?? true { firstSend = instant }
    }

    /// A decision answered at `instant`, the run's deadline being `deadline`.
    mutating func completed(at instant: ContinuousClock.Instant, deadline: ContinuousClock.Instant) {
        if instant <= deadline {
            decisionsByDeadline += 1
            if lastCompletion.map({ instant > $0 }) ?? true { lastCompletion = instant }
        } else {
            decisionsAfterDeadline += 1
        }
    }

    mutating func error(_ error: LoadTestError) {
        // Keep the kinds few: the first words of the message, without request ids.
        let message = error.message
        let key: String
        if let range = message.range(of: ": HTTP ") {
            key = "HTTP " + message[range.upperBound...].prefix { $0 != ":" }
        } else if message.contains("timed out") || message.contains("timeout") {
            key = "timeout"
        } else {
            key = error.code.rawValue
        }
        errors[key, default: 0] += 1
    }

    mutating func merge(_ other: WorkerRecord) {
        latency.add(other.latency)
        clamped += other.clamped
        if let first = other.firstSend { sending(at: first) }
        if let last = other.lastCompletion, lastCompletion.map({ last > $0 }) ?? true { lastCompletion = last }
        decisionsByDeadline += other.decisionsByDeadline
        decisionsAfterDeadline += other.decisionsAfterDeadline
        sent += other.sent
        allowed += other.allowed
        denied.merge(other.denied, uniquingKeysWith: +)
        errors.merge(other.errors, uniquingKeysWith: +)
        calls.merge(other.calls, uniquingKeysWith: +)
        streams += other.streams
        redemptions += other.redemptions
        books.merge(other.books)
    }
}

/// Counters every worker bumps, read by the progress line.
final class LiveCounters: Sendable {
    let decisions = Atomic<Int>(0)
    let errors = Atomic<Int>(0)
    let denied = Atomic<Int>(0)
    /// Open loop: the number of the next request due.
    let tickets = Atomic<Int>(0)
}

/// A snapshot for the live progress line.
public struct LoadProgress: Sendable, Hashable {
    /// Time since the start.
    public var elapsed: Duration
    /// Decisions so far.
    public var decisions: Int
    /// Of which denied.
    public var denied: Int
    /// Failed calls so far.
    public var errors: Int
    /// Decisions per second over the last interval.
    public var recentRate: Double

    /// One line, e.g. `[  3.0s]   41,233 decisions   13,511/s   denied 0   errors 0`.
    public var line: String {
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return "[\(Format.fixed(seconds, 1, width: 6))s] \(Format.grouped(decisions, width: 10)) decisions  "
            + "\(Format.grouped(Int(recentRate), width: 8))/s  denied \(Format.grouped(denied))  errors \(Format.grouped(errors))"
    }
}

/// Number formatting without Foundation's locale.
enum Format {
    static func grouped(_ value: Int, width: Int = 0) -> String {
        let digits = String(value.magnitude)
        var out = ""
        for (index, character) in digits.enumerated() {
            if index > 0, (digits.count - index) % 3 == 0 { out.append(",") }
            out.append(character)
        }
        if value < 0 { out = "-" + out }
        return String(repeating: " ", count: max(0, width - out.count)) + out
    }

    static func fixed(_ value: Double, _ decimals: Int, width: Int = 0) -> String {
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let rounded = (value * scale).rounded() / scale
        var text = String(rounded)
        if let dot = text.firstIndex(of: ".") {
            let fraction = text[text.index(after: dot)...]
            if fraction.count < decimals { text += String(repeating: "0", count: decimals - fraction.count) }
            if decimals == 0 { text = String(text[..<dot]) }
        } else if decimals > 0 {
            text += "." + String(repeating: "0", count: decimals)
        }
        return String(repeating: " ", count: max(0, width - text.count)) + text
    }
}
