import Histogram

/// What a run measured, and whether the books were right.
public struct LoadTestReport: Sendable {
    /// The run's settings.
    public let configuration: LoadTestConfiguration
    /// Where it ran.
    public let target: String
    /// From the start of traffic (connections included) to the last answer, stragglers included.
    public let elapsed: Duration
    /// The window the throughput is measured over.
    public let window: Window
    /// Decisions answered within the window (the throughput's numerator).
    public let decisionsInWindow: Int
    /// Latencies longer than the histogram holds (120 s), counted at 120 s.
    public let clampedLatencies: Int
    /// Open loop: requests due before the deadline that were never sent (the target fell behind).
    public let unsent: Int?
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

    /// What the throughput is divided by: from the first request sent to the deadline (when
    /// answers were still coming in at the deadline) or to the last answer (when all came
    /// back before it).
    public struct Window: Sendable, Hashable {
        /// Where the window ends.
        public enum End: String, Sendable, Hashable {
            case deadline
            case lastCompletion = "last_completion"
        }
        public var duration: Duration
        public var end: End
    }

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

    init(configuration: LoadTestConfiguration, target: String, elapsed: Duration, window: Window, unsent: Int?,
         record: WorkerRecord, books: BooksCheck) {
        self.configuration = configuration
        self.target = target
        self.elapsed = elapsed
        self.window = window
        self.decisionsInWindow = record.decisionsByDeadline
        self.clampedLatencies = record.clamped
        self.unsent = unsent
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
    /// Calls made, of every kind.
    public var totalCalls: Int { calls.values.reduce(0, +) }
    /// Decisions per second: the decisions answered within the window, over the window.
    public var throughput: Double {
        let seconds = LoadTest.seconds(window.duration)
        return seconds > 0 ? Double(decisionsInWindow) / seconds : 0
    }

    /// Why the run failed; empty when it passed. It fails when no decision was made, when
    /// more calls failed than the configuration allows (`maxErrorFraction`), when the books
    /// could not be checked, and when they are wrong.
    public var failures: [String] {
        var failures: [String] = []
        if decisions == 0 {
            failures.append(errors > 0 ? "no decision was made: all \(Format.grouped(errors)) call(s) failed (\(errorSummary))" : "no decision was made")
        } else if Double(errors) > configuration.maxErrorFraction * Double(totalCalls) {
            let percent = totalCalls > 0 ? 100 * Double(errors) / Double(totalCalls) : 100
            failures.append("\(Format.grouped(errors)) of \(Format.grouped(totalCalls)) calls failed (\(Format.fixed(percent, 2))%, "
                + "more than the \(Format.fixed(100 * configuration.maxErrorFraction, 2))% allowed): \(errorSummary)")
        }
        if let reason = books.notCheckedReason {
            failures.append("the books were not checked (\(reason))")
        } else if !books.ok {
            failures.append("the books are wrong")
        }
        return failures
    }

    /// Whether the run passed: decisions were made, few enough calls failed, and the books
    /// were checked and are right.
    public var ok: Bool { failures.isEmpty }

    private var errorSummary: String {
        errorKinds.isEmpty ? "0" : errorKinds.sorted { $0.key < $1.key }.map { "\($0.key) \(Format.grouped($0.value))" }.joined(separator: ", ")
    }

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
        lines.append("throughput  \(Format.grouped(Int(throughput.rounded()))) decisions/s (\(Format.grouped(decisions)) decisions\(streams > 0 ? ", \(Format.grouped(streams)) streams" : ""); "
            + "\(Format.grouped(decisionsInWindow)) answered in \(Format.fixed(LoadTest.seconds(window.duration), 2)) s from the first send to "
            + (window.end == .deadline ? "the deadline)" : "the last answer)"))
        lines.append("latency ms  p50 \(Format.fixed(latency.p50, 3))  p90 \(Format.fixed(latency.p90, 3))  p99 \(Format.fixed(latency.p99, 3))  p99.9 \(Format.fixed(latency.p999, 3))  max \(Format.fixed(latency.max, 3))"
            + (clampedLatencies > 0 ? " (\(Format.grouped(clampedLatencies)) over 120 s, counted as 120 s)" : ""))
        if let unsent, unsent > 0 {
            lines.append("unsent      \(Format.grouped(unsent)) requests due before the deadline were never sent (the target fell behind the rate)")
        }
        lines.append("allowed     \(Format.grouped(allowed))")
        let deniedText = denied.isEmpty ? "0" : denied.sorted { $0.key < $1.key }.map { "\($0.key) \(Format.grouped($0.value))" }.joined(separator: ", ")
        lines.append("denied      \(deniedText)")
        lines.append("errors      \(errorSummary)")
        let callsText = calls.sorted { $0.key < $1.key }.map { "\($0.key) \(Format.grouped($0.value))" }.joined(separator: ", ")
        lines.append("calls       \(callsText)" + (redemptions > 0 ? " (\(Format.grouped(redemptions)) coupons redeemed)" : ""))
        if let reason = books.notCheckedReason {
            lines.append("books       not checked (\(reason))")
        } else if books.ok {
            lines.append("books       ok: \(books.accountsChecked) accounts, \(Format.grouped(books.entriesChecked)) ledger entries match the allowed calls at the plan's prices, "
                + "\(books.balancesChecked) final balances right; audit clean"
                + (books.uncertainCalls > 0 ? " (\(books.uncertainCalls) failed calls left out)" : ""))
        } else {
            lines.append("books       WRONG:")
            lines += books.problems.map { "  " + $0 }
        }
        let failures = self.failures
        if !failures.isEmpty {
            lines.append("result      FAILED:")
            lines += failures.map { "  " + $0 }
        }
        return lines.joined(separator: "\n")
    }
}

extension LoadTestReport: Encodable {
    private enum CodingKeys: String, CodingKey {
        case workload, target, runID = "run_id", pacing, rate, concurrency, accounts, durationSeconds = "duration_s"
        case elapsedSeconds = "elapsed_s", throughput, throughputWindow = "throughput_window", decisions
        case decisionsInWindow = "decisions_in_window", latencyMs = "latency_ms", latencyClamped = "latency_clamped"
        case unsent = "open_loop_unsent", allowed, denied, errors, maxErrorRate = "max_error_rate"
        case errorKinds = "error_kinds", calls, streams, redemptions, booksOK = "books_ok", books, ok, failures
    }

    private struct BooksJSON: Encodable {
        let ok: Bool
        let checked: Bool
        let not_checked: String?
        let accounts_checked: Int
        let entries_checked: Int
        let balances_checked: Int
        let uncertain_calls: Int
        let problems: [String]
    }

    private struct WindowJSON: Encodable {
        let seconds: Double
        let from: String
        let to: String
    }

    /// `{"throughput", "throughput_window": {"seconds", "from": "first_send", "to": "deadline" |
    /// "last_completion"}, "latency_ms": {"p50", "p90", "p99", "p999", "max", "mean", "count"},
    /// "allowed", "denied": {reason: n}, "errors", "books_ok" (null when the books were not
    /// checked), "ok", "failures", ...}`.
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
        try container.encode(WindowJSON(seconds: (LoadTest.seconds(window.duration) * 1000).rounded() / 1000, from: "first_send",
                                        to: window.end.rawValue), forKey: .throughputWindow)
        try container.encode(decisions, forKey: .decisions)
        try container.encode(decisionsInWindow, forKey: .decisionsInWindow)
        try container.encode(latency, forKey: .latencyMs)
        try container.encode(clampedLatencies, forKey: .latencyClamped)
        try container.encodeIfPresent(unsent, forKey: .unsent)
        try container.encode(allowed, forKey: .allowed)
        try container.encode(denied, forKey: .denied)
        try container.encode(errors, forKey: .errors)
        try container.encode(configuration.maxErrorFraction * 100, forKey: .maxErrorRate)
        try container.encode(errorKinds, forKey: .errorKinds)
        try container.encode(calls, forKey: .calls)
        try container.encode(streams, forKey: .streams)
        try container.encode(redemptions, forKey: .redemptions)
        if books.checked {
            try container.encode(books.ok, forKey: .booksOK)
        } else {
            try container.encodeNil(forKey: .booksOK)
        }
        try container.encode(BooksJSON(ok: books.ok, checked: books.checked, not_checked: books.notCheckedReason,
                                       accounts_checked: books.accountsChecked, entries_checked: books.entriesChecked,
                                       balances_checked: books.balancesChecked, uncertain_calls: books.uncertainCalls,
                                       problems: books.problems), forKey: .books)
        try container.encode(ok, forKey: .ok)
        try container.encode(failures, forKey: .failures)
    }
}
