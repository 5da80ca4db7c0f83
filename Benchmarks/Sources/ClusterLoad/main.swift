// ClusterLoad: debits spread over many accounts (so over every slot and primary), on one Redis
// or a Redis Cluster, for a fixed time; then it checks the books. Used by Benchmarks/cluster-demo.
//
//   ClusterLoad (--redis URL | --redis-cluster host:port,...) [--accounts N] [--concurrency C]
//               [--seconds S] [--connections K] [--verify] [--cpu-pids PID,PID,...]
//
// Each of C tasks debits 1 micro-credit from account (task + n) mod N with a unique request id,
// back to back, and keeps every request id with its outcome: allowed, or failed (an error: the
// outcome is unknown, so it may or may not have applied). With --verify, after the run every
// failed request is sent again with the same request id (idempotent, I3), then for every account
// the ledger must hold each allowed request exactly once and no other debit, the balance must
// equal the start minus those debits, and the audit must be clean.
// With --cpu-pids, the CPU time (utime + stime from /proc/PID/stat) those processes (the
// redis-servers) used from just before the first debit to just after the last answer is
// reported as "redis_cpu_seconds": the measured window only, not the set-up or the checks.
// Prints one JSON line; exit 0 when the books are right (and, without --verify, nothing failed).

import Foundation
import Synchronization
import TollgateCore
import TollgateRedis

struct Options {
    var redis: String?
    var cluster: String?
    var accounts = 64
    var concurrency = 32
    var seconds = 5.0
    var connections = 4
    var verify = false
    var cpuPIDs: [Int32] = []
}

func fail(_ message: String, status: Int32 = 1) -> Never {
    FileHandle.standardError.write(Data("ClusterLoad: \(message)\n".utf8))
    exit(status)
}

var options = Options()
var rest = CommandLine.arguments.dropFirst()
while let flag = rest.popFirst() {
    switch flag {
    case "--redis": options.redis = rest.popFirst()
    case "--redis-cluster": options.cluster = rest.popFirst()
    case "--accounts": options.accounts = rest.popFirst().flatMap { Int($0) } ?? 0
    case "--concurrency": options.concurrency = rest.popFirst().flatMap { Int($0) } ?? 0
    case "--seconds": options.seconds = rest.popFirst().flatMap { Double($0) } ?? 0
    case "--connections": options.connections = rest.popFirst().flatMap { Int($0) } ?? 0
    case "--verify": options.verify = true
    case "--cpu-pids":
        let list = (rest.popFirst() ?? "").split(separator: ",").map { Int32($0) }
        guard !list.isEmpty, list.allSatisfy({ $0 != nil }) else { fail("--cpu-pids wants PID,PID,...", status: 2) }
        options.cpuPIDs = list.compactMap { $0 }
    default: fail("unknown flag \(flag)", status: 2)
    }
}
guard (options.redis == nil) != (options.cluster == nil), options.accounts > 0, options.concurrency > 0,
      options.seconds > 0, options.connections > 0 else {
    fail("usage: ClusterLoad (--redis URL | --redis-cluster host:port,...) [--accounts N] [--concurrency C] [--seconds S] [--connections K] [--verify]", status: 2)
}

let topology: RedisTopology
let client: RedisClient
do {
    if let cluster = options.cluster {
        topology = .cluster(try RedisAddress.clusterSeeds(parsing: cluster))
    } else {
        topology = .single(try RedisAddress(parsing: options.redis!))
    }
    client = try topology.client(RedisConfiguration(
        address: topology.primaryAddress, connectTimeout: .seconds(1), commandTimeout: .seconds(2),
        connectionCount: options.connections))
} catch {
    fail(error.description, status: 2)
}

let start: Money = (try? Money(parsing: "1000000")) ?? .zero
let run = "cl\(UInt64(Date().timeIntervalSince1970 * 1000) % 100_000_000)"
let engine: Engine
var ids: [AccountID] = []
do {
    engine = try await Engine.start(redis: client)
    for n in 0..<options.accounts {
        let id = try AccountID("\(run)-\(n)")
        _ = try await engine.createAccount(id)
        _ = try await engine.credit(id, amount: start, requestID: try RequestID("\(run)-seed-\(n)"))
        ids.append(id)
    }
} catch {
    fail("setup: \(error)")
}
let accounts = ids

struct TaskLog: Sendable {
    var allowed: [(account: Int, request: String)] = []
    var failed: [(account: Int, request: String)] = []
    var denied = 0
    var errors: [String: Int] = [:]
}

/// The CPU seconds (user + system) the processes of --cpu-pids have used so far; fails when one
/// cannot be read (a figure silently missing a process would be wrong, not smaller).
func cpuSeconds(_ pids: [Int32]) -> Double {
    let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
    var total = 0.0
    for pid in pids {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { fail("cannot read /proc/\(pid)/stat") }
        // After "pid (comm)": state is field 3, utime field 14, stime field 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else {
            fail("cannot parse /proc/\(pid)/stat")
        }
        total += (user + system) / ticks
    }
    return total
}

let clock = ContinuousClock()
let cpuBefore = cpuSeconds(options.cpuPIDs)
let began = clock.now
let deadline = began + .milliseconds(Int(options.seconds * 1000))
let logs: [TaskLog] = await withTaskGroup(of: TaskLog.self) { group in
    for task in 0..<options.concurrency {
        group.addTask {
            var log = TaskLog()
            var n = 0
            while clock.now < deadline {
                let account = (task + n * 7) % accounts.count
                let request = "\(run)-\(task)-\(n)"
                n += 1
                do throws(TollgateError) {
                    let decision = try await engine.debit(accounts[account], amount: Money(micros: 1)!, requestID: try RequestID(request))
                    if decision.allowed { log.allowed.append((account, request)) } else { log.denied += 1 }
                } catch {
                    log.failed.append((account, request))
                    log.errors["\(error.code)", default: 0] += 1
                    try? await Task.sleep(for: .milliseconds(5))
                }
            }
            return log
        }
    }
    var all: [TaskLog] = []
    for await log in group { all.append(log) }
    return all
}
let elapsed = began.duration(to: clock.now)
let cpuUsed = cpuSeconds(options.cpuPIDs) - cpuBefore
let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
let allowed = logs.flatMap { $0.allowed }
let failed = logs.flatMap { $0.failed }
var errorCounts: [String: Int] = [:]
for log in logs { for (code, count) in log.errors { errorCounts[code, default: 0] += count } }

var json = "{\"topology\":\"\(options.cluster == nil ? "single" : "cluster")\",\"accounts\":\(options.accounts)"
json += ",\"concurrency\":\(options.concurrency),\"seconds\":\(String(format: "%.2f", seconds))"
json += ",\"allowed\":\(allowed.count),\"decisions_per_second\":\(Int(Double(allowed.count) / seconds))"
json += ",\"denied\":\(logs.reduce(0) { $0 + $1.denied }),\"failed\":\(failed.count)"
if !options.cpuPIDs.isEmpty { json += ",\"redis_cpu_seconds\":\(String(format: "%.3f", cpuUsed))" }
json += ",\"errors\":{" + errorCounts.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",") + "}"

guard options.verify else {
    print(json + "}")
    exit(failed.isEmpty ? 0 : 1)
}

// Settle every unknown outcome: the same request id again applies it at most once (I3).
var expected = Array(repeating: Set<String>(), count: accounts.count)
for (account, request) in allowed { expected[account].insert(request) }
var unresolved = 0
for (account, request) in failed {
    var settled = false
    for _ in 0..<50 where !settled {
        do {
            let decision = try await engine.debit(accounts[account], amount: Money(micros: 1)!, requestID: try RequestID(request))
            if decision.allowed { expected[account].insert(request) }
            settled = true
        } catch {
            try? await Task.sleep(for: .milliseconds(100))
        }
    }
    if !settled { unresolved += 1 }
}
var problems: [String] = []
var replayedApplied = 0
for (index, id) in accounts.enumerated() {
    do {
        var seen: [String: Int] = [:]
        var cursor: String?
        repeat {
            let page = try await engine.ledger(id, limit: 1000, cursor: cursor)
            for entry in page.entries where entry.kind == .debit { seen[entry.requestID, default: 0] += 1 }
            cursor = page.nextCursor
        } while cursor != nil
        let doubled = seen.filter { $0.value > 1 }
        if !doubled.isEmpty { problems.append("\(id): debited twice: \(doubled.keys.sorted().prefix(3))") }
        let missing = expected[index].subtracting(seen.keys)
        if !missing.isEmpty {
            problems.append("\(id) (slot \(HashSlot.of("a:" + id.rawValue))): allowed but not in the ledger: \(missing.sorted().prefix(3))")
        }
        let extra = Set(seen.keys).subtracting(expected[index])
        if !extra.isEmpty { problems.append("\(id): in the ledger but never allowed: \(extra.sorted().prefix(3))") }
        let balance = try await engine.account(id).balance
        if balance.micros != start.micros - Int64(expected[index].count) {
            problems.append("\(id): balance \(balance) but \(expected[index].count) debits of 0.000001 from \(start)")
        }
    } catch {
        problems.append("\(id): \(error)")
    }
}
replayedApplied = expected.reduce(0) { $0 + $1.count } - allowed.count
let audit: AuditReport?
do { audit = try await engine.audit() } catch { audit = nil; problems.append("audit: \(error)") }
if let audit, !audit.isClean { problems.append("audit: \(audit.drifting.count) accounts drift") }
json += ",\"failed_then_applied_on_retry\":\(replayedApplied),\"unresolved\":\(unresolved)"
json += ",\"audit_clean\":\(audit?.isClean ?? false),\"books_right\":\(problems.isEmpty)"
print(json + "}")
for problem in problems.prefix(20) { FileHandle.standardError.write(Data("ClusterLoad: \(problem)\n".utf8)) }
exit(problems.isEmpty && unresolved == 0 ? 0 : 1)
