import Synchronization
import Testing
import TollgateCore
import TollgateRedis
import TollgateTestSupport

@Suite("Engine under concurrency and failure")
struct EngineConcurrencyTests {
    @Test("32 tasks × 200 debits against a balance that covers part: exactly the affordable ones pass, never below zero (I1, I2)")
    func noOverdraft() async throws {
        let f = try await EngineFixture(connections: 4)
        // 0.3 credits each; 1000.2 credits cover 3334 of the 6400 debits.
        let id = try await f.account("hot", balance: "1000.2")
        let results = try await withThrowingTaskGroup(of: (allowed: Int, denied: Int, lowest: Int64).self) { group in
            for task in 0..<32 {
                group.addTask {
                    var allowed = 0, denied = 0
                    var lowest = Int64.max
                    for index in 0..<200 {
                        let decision = try await f.engine.debit(id, amount: money("0.3"), requestID: request("t\(task)-\(index)"))
                        if decision.allowed { allowed += 1 } else {
                            denied += 1
                            #expect(decision.reason == .insufficientCredit)
                        }
                        lowest = min(lowest, decision.available?.micros ?? Int64.min)
                    }
                    return (allowed, denied, lowest)
                }
            }
            var total = (allowed: 0, denied: 0, lowest: Int64.max)
            for try await result in group {
                total.allowed += result.allowed
                total.denied += result.denied
                total.lowest = min(total.lowest, result.lowest)
            }
            return total
        }
        #expect(results.allowed == 3334)
        #expect(results.denied == 6400 - 3334)
        #expect(results.lowest >= 0)
        let account = try await f.engine.account(id)
        #expect(account.balance == money("0"))
        #expect(try await f.ledgerSum(id) == account.balance.micros)
        #expect(try await f.allEntries(id).filter { $0.kind == .debit }.count == 3334)
        let audit = try await f.engine.audit()
        #expect(audit.isClean, "\(audit.drifting)")
    }

    @Test("the same request id sent by 50 tasks at once applies once (I3)")
    func concurrentReplay() async throws {
        let f = try await EngineFixture(connections: 4)
        let id = try await f.account("a", balance: "10")
        let decisions = try await withThrowingTaskGroup(of: Decision.self) { group in
            for _ in 0..<50 {
                group.addTask { try await f.engine.debit(id, amount: money("1"), requestID: request("same")) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(decisions.allSatisfy { $0.allowed })
        #expect(decisions.filter { !$0.replayed }.count == 1)
        #expect(Set(decisions.map(\.entryID)).count == 1)
        #expect(try await f.engine.account(id).balance == money("9"))
        #expect(try await f.allEntries(id).count == 2)

        // Concurrent credits and holds with one id each behave the same way.
        let holds = try await withThrowingTaskGroup(of: Decision.self) { group in
            for _ in 0..<20 {
                group.addTask { try await f.engine.hold(id, amount: money("2"), ttl: .seconds(60), requestID: request("hold-once")) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(Set(holds.map(\.holdID)).count == 1)
        #expect(try await f.engine.account(id).held == money("2"))
    }

    @Test("Redis restarted in the middle of a run: the engine recovers by itself and the books balance",
          .enabled(if: !TestRedis.isCluster, "restarts the one Redis; ClusterTests cover a primary's failover"))
    func serverRestart() async throws {
        let f = try await EngineFixture(persistent: true, connections: 2)
        let id = try await f.account("a", balance: "100")
        // Debits run from before the restart until 50 have been answered after it; the restart
        // starts only once some were allowed, so it lands inside the traffic whatever the
        // machine's speed. Phase 0: before, 1: restarting, 2: after.
        let phase = Mutex(0)
        let allowedSoFar = Mutex(0)
        let load = Task {
            var allowed = [0, 0, 0], failed = 0, afterRestart = 0, index = 0
            while afterRestart < 50, index < 100_000 {
                let current = phase.withLock { $0 }
                do {
                    if try await f.engine.debit(id, amount: money("0.0001"), requestID: request("d\(index)")).allowed {
                        allowed[current] += 1
                        allowedSoFar.withLock { $0 += 1 }
                    }
                } catch let error as TollgateError {
                    #expect(error.code == .redisUnavailable, "\(error)")
                    failed += 1
                    try? await Task.sleep(for: .milliseconds(5))
                } catch {
                    Issue.record("unexpected \(error)")
                }
                if current == 2 { afterRestart += 1 }
                index += 1
            }
            return (allowed, failed)
        }
        let started = ContinuousClock.now
        while allowedSoFar.withLock({ $0 }) < 10, started.duration(to: .now) < .seconds(60) { try await Task.sleep(for: .milliseconds(5)) }
        phase.withLock { $0 = 1 }
        try await f.server.restart()
        phase.withLock { $0 = 2 }
        let (allowed, failed) = await load.value
        // The restart overlapped the debits: allowed before it, failed across it, allowed after.
        #expect(allowed[0] > 0, "no debit was allowed before the restart")
        #expect(failed > 0, "no debit failed: the restart did not reach the traffic (\(allowed) allowed)")
        #expect(allowed[2] > 0, "no debit was allowed after the restart")
        // After the restart the same engine, with no restart of its own, serves again.
        let after = try await f.engine.debit(id, amount: money("1"), requestID: request("after-restart"))
        #expect(after.allowed)
        // Debits whose replies were lost may or may not have applied; the ledger says which,
        // and the books balance either way.
        let debits = try await f.allEntries(id).filter { $0.kind == .debit }.count
        #expect(debits >= allowed.reduce(0, +) + 1)
        let account = try await f.engine.account(id)
        #expect(try await f.ledgerSum(id) == account.balance.micros)
        #expect(try await f.engine.audit().isClean)
    }

    @Test("Redis that lost the Lua library (no persistence) gets it back on the next call")
    func luaReloadedAfterFlush() async throws {
        let f = try await EngineFixture()
        let id = try await f.account("a", balance: "1")
        _ = try await f.engine.redis.send("FUNCTION", "FLUSH")
        #expect(try await f.engine.luaMatchesRepository() == false)
        #expect(try await f.engine.debit(id, amount: money("0.5"), requestID: request("d")).allowed)
        #expect(try await f.engine.luaMatchesRepository())
    }

    @Test("at start the engine replaces Lua that differs from the repository's")
    func luaReplacedAtStart() async throws {
        let f = try await EngineFixture()
        var load = RedisCommand("FUNCTION")
        load.append("LOAD")
        load.append("REPLACE")
        load.append("#!lua name=tollgate\nredis.register_function('debit', function(keys, args) return 'tampered' end)\n")
        _ = try await f.engine.redis.send(load)
        #expect(try await f.engine.luaMatchesRepository() == false)
        #expect(try await f.engine.prepare() == .replaced)
        #expect(try await f.engine.luaMatchesRepository())
        #expect(try await f.engine.prepare() == .alreadyCurrent)
    }

    @Test("with Redis down, calls fail with redis_unavailable instead of hanging",
          .enabled(if: !TestRedis.isCluster, "stops the one Redis"))
    func redisDown() async throws {
        let f = try await EngineFixture()
        let id = try await f.account("a", balance: "1")
        f.server.stop()
        do {
            _ = try await f.engine.debit(id, amount: money("0.5"), requestID: request("d"))
            Issue.record("a debit with Redis down must fail")
        } catch {
            #expect(error.code == .redisUnavailable)
        }
    }
}
