import TollgateCore

/// What traffic a load test sends.
public enum Workload: String, Sendable, Hashable, CaseIterable {
    /// One debit (`authorize`, `api_call=1`, by API key) per request across the accounts.
    case calls
    /// LLM streaming: authorize a hold on an estimate, report K token batches, settle.
    case stream
    /// `calls`, all on one account.
    case hot
    /// Calls and streams with top-ups, coupon redemptions and
    /// calls that limits refuse (a rate-limited key, an account without credit).
    case mixed
}

/// How calls spread over the accounts.
public enum AccountSkew: Sendable, Hashable {
    /// Every account equally likely.
    case uniform
    /// Account i (from 1) chosen with a probability proportional to 1 / i^exponent.
    case zipf(exponent: Double)
}

/// How requests are paced.
public enum Pacing: Sendable, Hashable {
    /// C workers, each sending its next request when the previous one is answered.
    case closedLoop
    /// Requests due at a fixed rate (per second) whatever the answers; latency is measured
    /// from when each request was due, so a slow answer counts for every request it delays
    /// (no coordinated omission).
    case openLoop(ratePerSecond: Double)
}

/// Everything that shapes one run.
public struct LoadTestConfiguration: Sendable, Hashable {
    /// The traffic.
    public var workload: Workload
    /// How long requests are sent.
    public var duration: Duration
    /// Concurrent workers (each with its own connection over HTTP).
    public var concurrency: Int
    /// Closed or open loop.
    public var pacing: Pacing
    /// Accounts the traffic spreads over (`hot` uses one).
    public var accounts: Int
    /// How calls spread over the accounts.
    public var skew: AccountSkew
    /// Token-batch reports per stream, between the hold and the settle.
    public var reportsPerStream: Int
    /// Prefix of every account id and request id of this run, so runs never collide.
    public var runID: String
    /// The share of calls that may fail (their outcome unknown) before the run fails: 0.01 is 1%.
    public var maxErrorFraction: Double

    /// A configuration; `runID` defaults to a fresh random one.
    public init(
        workload: Workload, duration: Duration = .seconds(10), concurrency: Int = 64, pacing: Pacing = .closedLoop,
        accounts: Int = 100, skew: AccountSkew = .uniform, reportsPerStream: Int = 4, runID: String? = nil,
        maxErrorFraction: Double = 0.01
    ) {
        self.maxErrorFraction = maxErrorFraction
        self.workload = workload
        self.duration = duration
        self.concurrency = concurrency
        self.pacing = pacing
        self.accounts = accounts
        self.skew = skew
        self.reportsPerStream = reportsPerStream
        self.runID = runID ?? "lt" + String(UInt32.random(in: 0...UInt32.max), radix: 36)
    }

    /// Refuses settings that cannot run.
    public func validate() throws(LoadTestError) {
        func invalid(_ message: String) -> LoadTestError { LoadTestError(.invalidConfiguration, message) }
        guard duration > .zero, duration <= .seconds(24 * 3600) else { throw invalid("the duration must be between 1 ms and 24 h") }
        guard (1...10_000).contains(concurrency) else { throw invalid("the concurrency must be between 1 and 10000") }
        guard (1...1_000_000).contains(accounts) else { throw invalid("the number of accounts must be between 1 and 1000000") }
        guard (0...1000).contains(reportsPerStream) else { throw invalid("the reports per stream must be between 0 and 1000") }
        if case .openLoop(let rate) = pacing, !(rate > 0 && rate <= 10_000_000) {
            throw invalid("the rate must be between 0 and 10000000 requests per second")
        }
        guard maxErrorFraction >= 0, maxErrorFraction <= 1 else { throw invalid("the error rate allowed must be between 0 and 100%") }
        if case .zipf(let exponent) = skew, !(exponent > 0 && exponent <= 10) {
            throw invalid("the Zipf exponent must be between 0 and 10")
        }
        guard !runID.isEmpty, runID.count <= 40, runID.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else {
            throw invalid("a run id is 1 to 40 ASCII letters, digits and dashes")
        }
    }

    /// Accounts the workload uses for its main traffic.
    var trafficAccounts: Int { workload == .hot ? 1 : accounts }
}
