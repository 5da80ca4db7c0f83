import Metrics
import Synchronization

/// The counters of one metric, one per combination of its dimensions, made on first use and
/// kept: a counter is looked up on every call, and making one registers it with the backend.
final class LabeledCounters: Sendable {
    private let label: String
    private let counters = Mutex([[String]: Metrics.Counter]())

    init(_ label: String) {
        self.label = label
    }

    /// Adds one to the counter of these dimensions (name and value pairs, always in the same order).
    func increment(_ dimensions: [(String, String)]) {
        let key = dimensions.map(\.1)
        let counter = counters.withLock { counters in
            if let existing = counters[key] { return existing }
            let made = Metrics.Counter(label: label, dimensions: dimensions)
            counters[key] = made
            return made
        }
        counter.increment()
    }
}
