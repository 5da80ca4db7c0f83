// Each Lua entry point through the engine, and Redis round trips, against a private
// redis-server (unix socket, no persistence) started per benchmark.
//
// An iteration is 1,000 calls from one caller, one after the other (`.kilo` scaling: figures
// per call), so the wall clock is a full round trip: the engine's Swift side, the hop to the
// connection's I/O thread, and the script inside Redis. Steps that need an open hold
// (capture, release, report, settle) get their holds made before the measured part.
// "pipelined" runs 64 concurrent callers, whose commands the client batches into pipelines.
//
// Allocations are this process's only (redis-server's work is not in them) and nearly
// constant per call: they are kept as thresholds with a small tolerance (`make bench-check`).

import Benchmark
import DebitWorkload
import Synchronization
import TollgateCore
import TollgateRedis
import TollgateTestSupport

/// A redis-server and an engine with a funded account, an API key with every limit on, and
/// prices; made in setup, torn down after.
final class LuaFixture: Sendable {
    struct State: Sendable {
        var server: RedisServer
        var client: RedisClient
        var engine: Engine
        var account: AccountID
        /// An account without limits for streams (holds stay open: no concurrency limit).
        var streams: AccountID
        var workload: DebitWorkload
    }
    private let state = Mutex<State?>(nil)
    private let sequence = Atomic<Int>(0)

    func setUp() async throws {
        let server = try await RedisServer()
        let client = RedisClient(configuration: RedisConfiguration(address: server.address))
        let engine = try await Engine.start(redis: client)
        let account = try AccountID("bench")
        let workload = try await DebitWorkload.prepare(engine: engine, account: account, requestIDPrefix: "lua", authorize: true)
        try await engine.setPrice(try PriceKey(meter: "tokens.output"), try Price(price: Money(micros: 2)!, per: 1))
        let streams = try AccountID("streams")
        _ = try await engine.createAccount(streams)
        _ = try await engine.credit(streams, amount: DebitWorkload.fundedBalance, requestID: try RequestID("streams-fund"))
        state.withLock { $0 = State(server: server, client: client, engine: engine, account: account, streams: streams, workload: workload) }
    }

    var current: State { state.withLock { $0! } }

    /// A request id not used before on this server.
    func requestID() -> RequestID {
        try! RequestID("r\(sequence.add(1, ordering: .relaxed).newValue)")
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
    /// Small tolerance: the client's batching varies a little with timing.
    let allocationThresholds: [BenchmarkMetric: BenchmarkThresholds] = [
        .mallocCountTotal: .init(relative: [.p90: 5.0], absolute: [.p90: 5]),
        .instructions: .init(relative: [.p90: 5.0], absolute: [:]),
    ]
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .instructions, .mallocCountTotal],
        warmupIterations: 1,
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: 20,
        thresholds: allocationThresholds
    )

    /// One Lua entry point on inputs `prepare` makes before the clock starts; `call` answers
    /// nil when the call was applied, else why not.
    func lua<Input: Sendable>(
        _ name: String,
        prepare: @escaping @Sendable (LuaFixture, Int) async throws -> [Input],
        call: @escaping @Sendable (LuaFixture, Input) async throws -> String?
    ) {
        let fixture = LuaFixture()
        Benchmark("Lua \(name)", closure: { benchmark in
            let inputs = try await prepare(fixture, benchmark.scaledIterations.count)
            benchmark.startMeasurement()
            for input in inputs {
                if let refused = try await call(fixture, input) { benchmark.error("\(name) refused: \(refused)") }
            }
            benchmark.stopMeasurement()
        }, setup: { try await fixture.setUp() }, teardown: { fixture.tearDown() })
    }
    /// One Lua entry point that needs nothing prepared.
    func lua(_ name: String, call: @escaping @Sendable (LuaFixture) async throws -> String?) {
        lua(name, prepare: { (_: LuaFixture, count: Int) -> [Int] in Array(repeating: 0, count: count) },
            call: { (fixture: LuaFixture, _: Int) in try await call(fixture) })
    }
    @Sendable func refusal(_ decision: Decision) -> String? {
        decision.allowed ? nil : decision.reason?.rawValue ?? "?"
    }

    let oneCall = [try! UsageItem(meter: "api_call", quantity: 1)]
    let batch = [try! UsageItem(meter: "tokens.output", quantity: 100)]
    let estimate = [try! UsageItem(meter: "tokens.output", quantity: 400)]

    /// Open holds made before the measured part.
    @Sendable func holds(_ fixture: LuaFixture, _ count: Int) async throws -> [HoldID] {
        let state = fixture.current
        var made: [HoldID] = []
        for _ in 0..<count {
            made.append(try await state.engine.hold(state.account, amount: Money(micros: 100)!, ttl: .seconds(600), requestID: fixture.requestID()).holdID!)
        }
        return made
    }
    @Sendable func authorizedHolds(_ fixture: LuaFixture, _ count: Int) async throws -> [HoldID] {
        let state = fixture.current
        var made: [HoldID] = []
        for _ in 0..<count {
            made.append(try await state.engine.authorize(
                .account(state.streams), usage: estimate, requestID: fixture.requestID(), mode: .hold(ttl: .seconds(600))).holdID!)
        }
        return made
    }

    lua("account_get") { fixture in
        _ = try await fixture.current.engine.account(fixture.current.account)
        return nil
    }
    lua("credit") { fixture in
        refusal(try await fixture.current.engine.credit(fixture.current.account, amount: Money(micros: 1)!, requestID: fixture.requestID()))
    }
    lua("debit") { fixture in
        refusal(try await fixture.current.engine.debit(fixture.current.account, amount: Money(micros: 1)!, requestID: fixture.requestID()))
    }
    lua("hold") { fixture in
        refusal(try await fixture.current.engine.hold(fixture.current.account, amount: Money(micros: 100)!, ttl: .seconds(600), requestID: fixture.requestID()))
    }
    lua("capture", prepare: holds) { fixture, hold in
        refusal(try await fixture.current.engine.capture(hold, amount: Money(micros: 40)!, requestID: fixture.requestID()))
    }
    lua("release", prepare: holds) { fixture, hold in
        refusal(try await fixture.current.engine.release(hold, requestID: fixture.requestID()))
    }
    lua("authorize (debit by key, every limit on, 2 items)") { fixture in
        refusal(try await fixture.current.workload.call(requestID: fixture.requestID()))
    }
    lua("authorize (by account, no limits, 1 item)") { fixture in
        refusal(try await fixture.current.engine.authorize(.account(fixture.current.account), usage: oneCall, requestID: fixture.requestID()))
    }
    lua("report", prepare: authorizedHolds) { fixture, hold in
        refusal(try await fixture.current.engine.report(hold, usage: batch, requestID: fixture.requestID()))
    }
    lua("settle", prepare: authorizedHolds) { fixture, hold in
        refusal(try await fixture.current.engine.settle(hold, usage: nil, requestID: fixture.requestID()))
    }

    // Round trips without Lua: one caller (a full round trip each), and 64 callers whose
    // commands the client pipelines.
    for callers in [1, 64] {
        let fixture = LuaFixture()
        Benchmark("Redis PING, \(callers == 1 ? "1 caller" : "\(callers) callers pipelined")", closure: { benchmark in
            let client = fixture.current.client
            let total = benchmark.scaledIterations.count
            benchmark.startMeasurement()
            await withTaskGroup(of: Void.self) { group in
                for caller in 0..<callers {
                    let share = total / callers + (caller < total % callers ? 1 : 0)
                    group.addTask {
                        for _ in 0..<share { try? await client.ping() }
                    }
                }
            }
            benchmark.stopMeasurement()
        }, setup: { try await fixture.setUp() }, teardown: { fixture.tearDown() })
    }
}
