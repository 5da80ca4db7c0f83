// In-process debit throughput of the engine at 1, 16 and 64 concurrent callers.
//
// Each benchmark starts its own redis-server (unix socket, no persistence), creates an
// account with a balance that covers every debit, and measures iterations of 1,000 debits
// (each with a unique request id) split over N concurrent tasks sharing one Engine. With the
// `.kilo` scaling factor the reported throughput is in debits per second and the per-
// iteration metrics (wall clock, instructions, mallocs, ...) are per debit.
//
//   cd Benchmarks && swift package --scratch-path .build-bench benchmark
//
// Note: redis-server runs on the same machine and its CPU time is not in these figures
// (instructions, CPU and malloc counts are this process's only).

import Benchmark
import DebitWorkload
import Synchronization
import TollgateCore
import TollgateRedis
import TollgateTestSupport

/// A benchmark's server, client and workload, made in setup and torn down after it.
final class DebitFixture: Sendable {
    private struct State {
        var server: RedisServer
        var client: RedisClient
        var workload: DebitWorkload
    }
    private let state = Mutex<State?>(nil)

    func setUp(name: String) async throws {
        let server = try await RedisServer()
        // The default configuration, pool size included, as an application would have it.
        let client = RedisClient(configuration: RedisConfiguration(address: server.address))
        let engine = try await Engine.start(redis: client)
        let workload = try await DebitWorkload.prepare(
            engine: engine, account: try AccountID("bench"), requestIDPrefix: name)
        state.withLock { $0 = State(server: server, client: client, workload: workload) }
    }

    var workload: DebitWorkload {
        state.withLock { $0!.workload }
    }

    func tearDown() {
        let finished = state.withLock { current -> State? in
            defer { current = nil }
            return current
        }
        finished?.client.close()
        finished?.server.stop()
    }
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        // instructions need hardware counters (perf events); syscalls and context switches
        // are reported on macOS only. Metrics a machine lacks are left out of the results.
        metrics: [
            .throughput, .wallClock, .cpuTotal, .instructions, .mallocCountTotal,
            .syscalls, .contextSwitches,
        ],
        warmupIterations: 3,
        scalingFactor: .kilo,
        maxDuration: .seconds(5),
        maxIterations: 2_000
    )

    for callers in [1, 16, 64] {
        let fixture = DebitFixture()
        Benchmark(
            "Engine.debit",
            configuration: .init(tags: ["callers": String(callers)]),
            closure: { benchmark in
                let workload = fixture.workload
                benchmark.startMeasurement()
                let outcome = await workload.run(debits: benchmark.scaledIterations.count, concurrency: callers)
                benchmark.stopMeasurement()
                if outcome.allowed != outcome.total {
                    benchmark.error("\(outcome.total - outcome.allowed) of \(outcome.total) debits were not applied: \(outcome.firstError ?? "?")")
                }
            },
            setup: { try await fixture.setUp(name: "bench-\(callers)") },
            teardown: { fixture.tearDown() }
        )
    }
}
