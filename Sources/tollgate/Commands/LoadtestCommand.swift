import ArgumentParser
import Foundation
import TollgateCore
import TollgateLoadTest
import TollgateRedis

/// `tollgate loadtest`: drives a workload against a server (HTTP) or the engine in-process,
/// prints the figures, checks the books; exit 1 when no decision was made, too many calls
/// failed, or the books are wrong or could not be checked.
struct LoadtestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loadtest",
        abstract: "Measure decisions/s and latency under a workload, then check the books.",
        discussion: """
            Against a running server (--server URL --token SERVICE_TOKEN, plus the admin token \
            for setting up accounts and reading ledgers: --admin-token or TOLLGATE_ADMIN_TOKEN), \
            or in-process against Redis (--redis URL). The load test makes its own accounts \
            (named after the run id), prices (meters loadtest.call and tokens.loadtest) and keys.

            Workloads: calls (one debit per request across --accounts, --skew uniform|zipf), \
            stream (hold, --reports token batches, settle), hot (one account), mixed (calls, \
            streams, top-ups, coupon redemptions (1,000 single-use codes of 0.5), calls refused by \
            a rate limit and by a lack of credit).

            Without --rate: a closed loop of --concurrency workers. With --rate R: an open loop, \
            R requests/s due whatever the answers, latency counted from when each was due. For \
            stream (and the streams of mixed), --rate schedules whole streams (hold, reports, \
            settle): R streams/s; the hold is timed from when its stream was due, the reports \
            and the settle, which follow at once, from when each is sent. Throughput is the decisions answered by the deadline over the \
            window from the first send to the deadline (or to the last answer when all came \
            back before it).

            The run fails when no decision was made, when more than --max-error-rate percent of \
            the calls failed (their outcome is unknown), and when the books are wrong or could \
            not be checked (the report is printed in every case).

            Exit codes: 0 passed, 1 failed (see above) or the target failed, 2 bad flags.
            """)

    @Option(help: "calls, stream, hot or mixed.") var workload: String = "calls"
    @Option(help: ArgumentHelp("How long to send requests, e.g. 10s or 500ms.", valueName: "duration"))
    var duration: DurationArgument = DurationArgument(.seconds(10))
    @Option(help: "Concurrent workers (each with its own connection over HTTP).") var concurrency: Int = 64
    @Option(help: "Open loop: requests per second due, whatever the answers (for stream: whole streams per second).")
    var rate: Double?
    @Option(help: "Accounts the traffic spreads over.") var accounts: Int = 100
    @Option(help: "How calls spread over accounts: uniform or zipf.") var skew: String = "uniform"
    @Option(help: "The Zipf exponent with --skew zipf.") var zipfExponent: Double = 1.1
    @Option(help: "Token-batch reports per stream.") var reports: Int = 4
    @Option(help: "Server address, e.g. http://127.0.0.1:8080.") var server: String?
    @Option(help: "The service token (with --server); else TOLLGATE_SERVICE_TOKEN.") var token: String?
    @Option(help: "The admin token (with --server); else TOLLGATE_ADMIN_TOKEN.") var adminToken: String?
    @Option(help: ArgumentHelp(
        "Redis address for an in-process run: redis://host:port or unix:///path.", valueName: "url"))
    var redis: String?
    @Option(help: ArgumentHelp(
        "Redis Cluster seed nodes for an in-process run: host:port[,host:port...].", valueName: "nodes"))
    var redisCluster: String?
    @Option(help: "Redis connections for an in-process run (per primary on a cluster).") var redisConnections: Int = 4
    @Option(help: ArgumentHelp("How long one request may take before it counts as an error.", valueName: "duration"))
    var timeout: DurationArgument = DurationArgument(.seconds(5))
    @Option(help: ArgumentHelp("The run fails when more than this percentage of calls fail.", valueName: "percent"))
    var maxErrorRate: Double = 1
    @Option(help: "A prefix for the run's account and request ids (default: random).") var runId: String?
    @Flag(help: "Print one JSON object instead of the text summary.") var json = false
    @Flag(help: "No live progress line.") var quiet = false
    @OptionGroup(title: "Coupons (in-process runs)") var coupons: CouponSecretOptions

    func validate() throws {
        guard Workload(rawValue: workload) != nil else {
            throw ValidationError("--workload is one of \(Workload.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard ["uniform", "zipf"].contains(skew) else { throw ValidationError("--skew is uniform or zipf") }
        if redis != nil, redisCluster != nil { throw ValidationError("give --redis or --redis-cluster, not both") }
        switch (server, redis ?? redisCluster) {
        case (nil, nil): throw ValidationError("give --server URL (with --token), --redis URL or --redis-cluster NODES")
        case (.some, .some): throw ValidationError("give --server or --redis, not both")
        default: break
        }
        guard maxErrorRate >= 0, maxErrorRate <= 100 else { throw ValidationError("--max-error-rate is a percentage, 0 to 100") }
        if server != nil, serviceToken == nil {
            throw ValidationError("--server needs the service token: --token or TOLLGATE_SERVICE_TOKEN")
        }
    }

    private var environment: [String: String] { ProcessInfo.processInfo.environment }
    private var serviceToken: String? { token ?? environment["TOLLGATE_SERVICE_TOKEN"] }

    func run() async throws {
        let skewValue: AccountSkew = skew == "zipf" ? .zipf(exponent: zipfExponent) : .uniform
        let pacing: Pacing = rate.map { .openLoop(ratePerSecond: $0) } ?? .closedLoop
        let configuration = LoadTestConfiguration(
            workload: Workload(rawValue: workload) ?? .calls, duration: duration.duration, concurrency: concurrency,
            pacing: pacing, accounts: accounts, skew: skewValue, reportsPerStream: reports, runID: runId,
            maxErrorFraction: maxErrorRate / 100)
        let report: LoadTestReport
        do throws(LoadTestError) {
            report = try await execute(configuration)
        } catch {
            if !quiet { Self.progressLine(nil) }
            Output.error("\(error.code): \(error.message)")
            throw error.code == .invalidConfiguration ? CLIExit.badInput : CLIExit.failure
        }
        if !quiet { Self.progressLine(nil) }
        if json {
            Output.json(report)
        } else {
            print(report.text)
        }
        let failures = report.failures
        if !failures.isEmpty {
            Output.error("the load test failed: " + failures.joined(separator: "; "))
            throw CLIExit.failure
        }
    }

    private func execute(_ configuration: LoadTestConfiguration) async throws(LoadTestError) -> LoadTestReport {
        try configuration.validate()
        let target = try await makeTarget()
        let progress: (@Sendable (LoadProgress) -> Void)?
        if quiet {
            progress = nil
        } else {
            progress = { (snapshot: LoadProgress) in LoadtestCommand.progressLine(snapshot.line) }
        }
        let report: LoadTestReport
        do throws(LoadTestError) {
            report = try await LoadTest(configuration: configuration, target: target).run(progress: progress)
        } catch {
            await target.shutdown()
            throw error
        }
        await target.shutdown()
        return report
    }

    private func couponKey() throws(LoadTestError) -> CouponKey {
        do {
            return try coupons.couponKey()
        } catch {
            throw LoadTestError(.invalidConfiguration, "no coupon secret: \(error)")
        }
    }

    private func makeTarget() async throws(LoadTestError) -> any LoadTarget {
        if let server {
            let admin = adminToken ?? environment["TOLLGATE_ADMIN_TOKEN"]
            return try HTTPTarget(url: server, serviceToken: serviceToken ?? "", adminToken: admin, timeout: timeout.duration)
        }
        if let redisCluster {
            let seeds: [RedisAddress]
            do { seeds = try RedisAddress.clusterSeeds(parsing: redisCluster) } catch {
                throw LoadTestError(.invalidConfiguration, error.message)
            }
            return try await EngineTarget.connect(topology: .cluster(seeds), connections: redisConnections, timeout: timeout.duration,
                                                  couponKey: try couponKey())
        }
        let url = redis ?? ""
        return try await EngineTarget.connect(redisURL: url, connections: redisConnections, timeout: timeout.duration,
                                              couponKey: try couponKey())
    }

    /// The live line on stderr: rewritten in place on a terminal, a line a second otherwise;
    /// nil ends it.
    private static func progressLine(_ line: String?) {
        let terminal = isatty(STDERR_FILENO) == 1
        guard let line else {
            if terminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
            return
        }
        FileHandle.standardError.write(Data((terminal ? "\r\u{1B}[K" + line : line + "\n").utf8))
    }
}
