// DebitLoad: in-process engine debit throughput against an existing Redis, for a fixed time.
//
//   DebitLoad --redis URL [--concurrency N] [--seconds S] [--warmup S] [--connections K]
//             [--account ID] [--setup-only] [--probe REQUEST_ID]
//
// Starts an `Engine` (which installs Tollgate's Lua), makes sure the account exists with a
// balance that covers every debit, then runs N concurrent callers debiting 1 micro-credit
// each with a unique request id, and prints one JSON line:
//   {"concurrency":N,"connections":K,"seconds":S,"debits":D,"debits_per_second":R,
//    "denied":0,"failed":0,"warmup_debits":W,"cpu_user_seconds":U,"cpu_system_seconds":Y,"context_switches":C}
// (CPU time and context switches are this process' own, over the measured seconds; W is the
// debits applied during the warm-up, so a caller can check the ledger holds exactly D + W.)
// `--setup-only` stops after installing the Lua and funding the account (exit 0);
// `--probe REQUEST_ID` does that, then one debit with that request id (so a MONITOR can see
// the exact command the engine sends), and stops.
// Exit status: 0 when every debit was applied, 1 otherwise, 2 on bad arguments.

import DebitWorkload
import Foundation
import TollgateCore
import TollgateRedis

struct Options {
    var redis = ""
    var concurrency = 1
    var seconds = 5.0
    var warmup = 1.0
    var connections = RedisConfiguration(address: RedisAddress(endpoint: .tcp(host: "127.0.0.1", port: 6379))).connectionCount
    var account = "bench"
    var setupOnly = false
    var authorize = false
    var probe: String?

    static func parse(_ arguments: [String]) -> Options? {
        var options = Options()
        var rest = arguments[...]
        func value() -> String? { rest.popFirst() }
        while let flag = rest.popFirst() {
            switch flag {
            case "--redis": guard let v = value() else { return nil }; options.redis = v
            case "--concurrency": guard let v = value().flatMap({ Int($0) }), v > 0 else { return nil }; options.concurrency = v
            case "--seconds": guard let v = value().flatMap({ Double($0) }), v > 0 else { return nil }; options.seconds = v
            case "--warmup": guard let v = value().flatMap({ Double($0) }), v >= 0 else { return nil }; options.warmup = v
            case "--connections": guard let v = value().flatMap({ Int($0) }), v > 0 else { return nil }; options.connections = v
            case "--account": guard let v = value() else { return nil }; options.account = v
            case "--setup-only": options.setupOnly = true
            case "--operation":
                switch value() {
                case "debit": options.authorize = false
                case "authorize": options.authorize = true
                default: return nil
                }
            case "--probe": guard let v = value() else { return nil }; options.probe = v
            default: return nil
            }
        }
        return options.redis.isEmpty ? nil : options
    }
}

func fail(_ message: String, status: Int32 = 1) -> Never {
    FileHandle.standardError.write(Data("DebitLoad: \(message)\n".utf8))
    exit(status)
}

/// This process' CPU time and context switches so far.
func resourceUsage() -> (user: Double, system: Double, contextSwitches: Int) {
    var usage = rusage()
    #if canImport(Glibc)
    getrusage(RUSAGE_SELF.rawValue, &usage)
    #else
    getrusage(RUSAGE_SELF, &usage)
    #endif
    func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
    return (seconds(usage.ru_utime), seconds(usage.ru_stime), usage.ru_nvcsw + usage.ru_nivcsw)
}

func format(_ value: Double, _ digits: Int = 3) -> String { String(format: "%.\(digits)f", value) }

guard let options = Options.parse(Array(CommandLine.arguments.dropFirst())) else {
    fail("usage: DebitLoad --redis URL [--concurrency N] [--seconds S] [--warmup S] [--connections K] [--account ID] [--setup-only] [--probe REQUEST_ID] [--operation debit|authorize]", status: 2)
}

let address: RedisAddress
do {
    address = try RedisAddress(parsing: options.redis)
} catch {
    fail(error.description, status: 2)
}
let client = RedisClient(configuration: RedisConfiguration(address: address, connectionCount: options.connections))
let workload: DebitWorkload
do {
    let engine = try await Engine.start(redis: client)
    let prefix = "dl-\(ProcessInfo.processInfo.processIdentifier)-\(UInt64(Date().timeIntervalSince1970 * 1000))"
    workload = try await DebitWorkload.prepare(engine: engine, account: try AccountID(options.account), requestIDPrefix: prefix,
                                               authorize: options.authorize)
} catch {
    fail(error.description)
}
if let probe = options.probe {
    do {
        let decision = try await workload.call(requestID: try RequestID(probe))
        guard decision.allowed else { fail("the probe debit was denied: \(decision.reason?.rawValue ?? "?")") }
    } catch {
        fail(error.description)
    }
}
if options.setupOnly || options.probe != nil {
    client.close()
    exit(0)
}

var warmupDebits = 0
if options.warmup > 0 {
    let warmup = await workload.run(for: .milliseconds(Int(options.warmup * 1000)), concurrency: options.concurrency)
    guard warmup.denied == 0, warmup.failed == 0 else {
        fail("the warm-up had \(warmup.denied) denied and \(warmup.failed) failed debits: \(warmup.firstError ?? "")")
    }
    warmupDebits = warmup.allowed
}
let usageBefore = resourceUsage()
let outcome = await workload.run(for: .milliseconds(Int(options.seconds * 1000)), concurrency: options.concurrency)
let usageAfter = resourceUsage()
client.close()

let (wholeSeconds, attoseconds) = outcome.elapsed.components
let elapsed = Double(wholeSeconds) + Double(attoseconds) / 1e18
var json = "{\"concurrency\":\(options.concurrency),\"connections\":\(options.connections)"
json += ",\"seconds\":\(format(elapsed)),\"debits\":\(outcome.allowed)"
json += ",\"debits_per_second\":\(format(Double(outcome.allowed) / elapsed, 0))"
json += ",\"denied\":\(outcome.denied),\"failed\":\(outcome.failed),\"warmup_debits\":\(warmupDebits)"
json += ",\"cpu_user_seconds\":\(format(usageAfter.user - usageBefore.user)),\"cpu_system_seconds\":\(format(usageAfter.system - usageBefore.system))"
json += ",\"context_switches\":\(usageAfter.contextSwitches - usageBefore.contextSwitches)"
if let firstError = outcome.firstError {
    json += ",\"first_error\":\"\(firstError.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\""))\""
}
json += "}"
print(json)
exit(outcome.denied == 0 && outcome.failed == 0 ? 0 : 1)
