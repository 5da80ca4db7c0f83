import Histogram

/// What a run measured, and whether the books were right.
public struct LoadTestReport: Sendable {
    /// The run's settings.
    public let configuration: LoadTestConfiguration
    /// Where it ran.
    public let target: String
    /// From the first request to the last answer.
    public let elapsed: Duration
    /// Gateway decisions allowed.
    public let allowed: Int
    /// Gateway decisions refused, by reason.
    public let denied: [String: Int]
    /// Failed calls, by kind.
    public let errorKinds: [String: Int]
    /// Calls by kind (`authorize`, `report`, `settle`, `topup`, `redeem`).
    public let calls: [String: Int]
    /// Streams completed.
    public let streams: Int
    /// Coupons redeemed.
    public let redemptions: Int
    /// Latency percentiles in milliseconds: p50, p90, p99, p99.9, max, mean.
    public let latency: LatencySummary
    /// The books check.
    public let books: BooksCheck

    /// Latency figures, in milliseconds.
    public struct LatencySummary: Sendable, Hashable, Encodable {
        public var p50: Double
        public var p90: Double
        public var p99: Double
        public var p999: Double
        public var max: Double
        public var mean: Double
        /// Calls measured.
        public var count: Int
    }

    init(configuration: LoadTestConfiguration, target: String, elapsed: Duration, record: WorkerRecord, books: BooksCheck) {
        self.configuration = configuration
        self.target = target
        self.elapsed = elapsed
        self.allowed = record.allowed
        self.denied = record.denied
        self.errorKinds = record.errors
        self.calls = record.calls
        self.streams = record.streams
        self.redemptions = record.redemptions
        self.books = books
        let histogram = record.latency
        func ms(_ micros: UInt64) -> Double { (Double(micros) / 1000 * 1000).rounded() / 1000 }
        self.latency = LatencySummary(
            p50: ms(histogram.valueAtPercentile(50)), p90: ms(histogram.valueAtPercentile(90)),
            p99: ms(histogram.valueAtPercentile(99)), p999: ms(histogram.valueAtPercentile(99.9)),
            max: ms(histogram.max), mean: (histogram.mean / 1000 * 1000).rounded() / 1000,
            count: Int(histogram.totalCount))
    }

    /// Decisions (allowed and denied gateway calls).
    public var decisions: Int { allowed + denied.values.reduce(0, +) }
    /// Failed calls.
    public var errors: Int { errorKinds.values.reduce(0, +) }
    /// Decisions per second.
    public var throughput: Double {
        let seconds = LoadTest.seconds(elapsed)
        return seconds > 0 ? Double(decisions) / seconds : 0
    }

    /// Whether the run passed: the books are right. (Errors are reported, and the calls they
    /// hit are left out of the books check; they do not fail the run by themselves.)
    public var ok: Bool { books.ok }

    /// The report as people read it.
    public var text: String {
        var lines: [String] = []
        let pacing: String
        switch configuration.pacing {
        case .closedLoop: pacing = "closed loop, \(configuration.concurrency) workers"
        case .openLoop(let rate): pacing = "open loop at \(Format.grouped(Int(rate)))/s, \(configuration.concurrency) workers"
        }
        lines.append("workload    \(configuration.workload.rawValue) on \(target) (\(pacing), \(configuration.trafficAccounts) account(s), run \(configuration.runID))")
        lines.append("elapsed     \(Format.fixed(LoadTest.seconds(elapsed), 2)) s")
        lines.append("throughput  \(Format.grouped(Int(throughput.rounded()))) decisions/s (\(Format.grouped(decisions)) decisions\(streams > 0 ? ", \(Format.grouped(streams)) streams" : ""))")
        lines.append("latency ms  p50 \(Format.fixed(latency.p50, 3))  p90 \(Format.fixed(latency.p90, 3))  p99 \(Format.fixed(latency.p99, 3))  p99.9 \(Format.fixed(latency.p999, 3))  max \(Format.fixed(latency.max, 3))")
        lines.append("allowed     \(Format.grouped(allowed))")
        let deniedText = denied.isEmpty ? "0" : denied.sorted { $0.key < $1.key }.map { "\($0.key) \(Format.grouped($0.value))" }.joined(separator: ", ")
        lines.append("denied      \(deniedText)")
        let errorText = errorKinds.isEmpty ? "0" : errorKinds.sorted { $0.key < $1.key }.map { "\($0.key) \(Format.grouped($0.value))" }.joined(separator: ", ")
        lines.append("errors      \(errorText)")
        let callsText = calls.sorted { $0.key < $1.key }.map { "\($0.key) \(Format.grouped($0.value))" }.joined(separator: ", ")
        lines.append("calls       \(callsText)" + (redemptions > 0 ? " (\(Format.grouped(redemptions)) coupons redeemed)" : ""))
        if books.ok {
            lines.append("books       ok: \(books.accountsChecked) accounts, \(Format.grouped(books.entriesChecked)) ledger entries match the allowed calls; audit clean"
                + (books.uncertainCalls > 0 ? " (\(books.uncertainCalls) failed calls left out)" : ""))
        } else {
            lines.append("books       WRONG:")
            lines += books.problems.map { "  " + $0 }
        }
        return lines.joined(separator: "\n")
    }
}

extension LoadTestReport: Encodable {
    private enum CodingKeys: String, CodingKey {
        case workload, target, runID = "run_id", pacing, rate, concurrency, accounts, durationSeconds = "duration_s"
        case elapsedSeconds = "elapsed_s", throughput, decisions, latencyMs = "latency_ms", allowed, denied, errors
        case errorKinds = "error_kinds", calls, streams, redemptions, booksOK = "books_ok", books
    }

    private struct BooksJSON: Encodable {
        let ok: Bool
        let accounts_checked: Int
        let entries_checked: Int
        let uncertain_calls: Int
        let problems: [String]
    }

    /// `{"throughput", "latency_ms": {"p50", "p90", "p99", "p999", "max", "mean", "count"}, "allowed",
    /// "denied": {reason: n}, "errors", "books_ok", ...}`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(configuration.workload.rawValue, forKey: .workload)
        try container.encode(target, forKey: .target)
        try container.encode(configuration.runID, forKey: .runID)
        switch configuration.pacing {
        case .closedLoop:
            try container.encode("closed", forKey: .pacing)
        case .openLoop(let rate):
            try container.encode("open", forKey: .pacing)
            try container.encode(rate, forKey: .rate)
        }
        try container.encode(configuration.concurrency, forKey: .concurrency)
        try container.encode(configuration.trafficAccounts, forKey: .accounts)
        try container.encode(LoadTest.seconds(configuration.duration), forKey: .durationSeconds)
        try container.encode((LoadTest.seconds(elapsed) * 1000).rounded() / 1000, forKey: .elapsedSeconds)
        try container.encode(throughput.rounded(), forKey: .throughput)
        try container.encode(decisions, forKey: .decisions)
        try container.encode(latency, forKey: .latencyMs)
        try container.encode(allowed, forKey: .allowed)
        try container.encode(denied, forKey: .denied)
        try container.encode(errors, forKey: .errors)
        try container.encode(errorKinds, forKey: .errorKinds)
        try container.encode(calls, forKey: .calls)
        try container.encode(streams, forKey: .streams)
        try container.encode(redemptions, forKey: .redemptions)
        try container.encode(books.ok, forKey: .booksOK)
        try container.encode(BooksJSON(ok: books.ok, accounts_checked: books.accountsChecked, entries_checked: books.entriesChecked,
                                       uncertain_calls: books.uncertainCalls, problems: books.problems), forKey: .books)
    }
}
