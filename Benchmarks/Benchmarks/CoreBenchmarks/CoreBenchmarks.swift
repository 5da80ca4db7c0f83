// Pure Swift work on the decision path, no Redis: money parsing and formatting, price
// computation, usage parsing, RESP encoding (the FCALL the engine writes) and decoding (a
// decision reply, through hiredis' reader). Each iteration is one operation (`.kilo` scaling:
// figures per operation, throughput in thousands per second).
//
// Allocations per operation are deterministic here, so they are the metric kept as a
// threshold (Thresholds/, `make bench-check`); instructions join them on machines with
// hardware counters. Wall clock and throughput are printed for information only.

import Benchmark
import TollgateCore
import TollgateRedis


/// What Redis answers an authorize with: status, balance, held, entry, amount, limits... (the
/// shape of `Decision(stepReply:)`'s input; the exact fields do not matter for decoding cost).
let authorizeReply: [UInt8] = {
    var text = "*12\r\n:1\r\n$0\r\n\r\n$6\r\nactive\r\n:999998850\r\n:0\r\n:0\r\n$15\r\n1767225600000-3\r\n:1150\r\n$-1\r\n:0\r\n:-1\r\n"
    text += "*8\r\n" + (0..<8).map { _ in "*4\r\n$11\r\naccount.rpm\r\n:600000\r\n:599990\r\n:60000\r\n" }.joined()
    return Array(text.utf8)
}()

let benchmarks: @Sendable () -> Void = {
    /// The stable metrics, checked against Thresholds/; exact for pure code.
    let exactThresholds: [BenchmarkMetric: BenchmarkThresholds] = [
        .mallocCountTotal: .init(relative: [.p90: 0.0], absolute: [.p90: 0]),
        .instructions: .init(relative: [.p90: 5.0], absolute: [:]),
    ]
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .instructions, .mallocCountTotal],
        warmupIterations: 10,
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: 1_000,
        thresholds: exactThresholds
    )

    Benchmark("Money.parse") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try? Money(parsing: "1234.567891"))
        }
    }

    Benchmark("Money.description") { benchmark in
        let money = Money(micros: 1_234_567_891)!
        for _ in benchmark.scaledIterations {
            blackHole(money.description)
        }
    }

    Benchmark("Price.cost (0.15 per 1M tokens, carried)") { benchmark in
        let price = try Price(price: try Money(parsing: "0.15"), per: 1_000_000)
        var carry: Int64 = 0
        for _ in benchmark.scaledIterations {
            let cost = price.cost(of: 1_237, carry: carry)!
            carry = cost.carry
            blackHole(cost.micros)
        }
    }

    Benchmark("UsageItem.parseList (2 items)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try? UsageItem.parseList("api_call=1,tokens.input@m=1200"))
        }
    }

    Benchmark("RESP encode: FCALL authorize (5 keys, 22 arguments)") { benchmark in
        let keys = ["tg:{a:acme}:acct", "tg:{a:acme}:ledger", "tg:{a:acme}:holds", "tg:{a:acme}:holdexp", "tg:{a:acme}:idem:req-1"]
        let arguments = ["1767225600000", "2026112514", "20261125", "202611", "1767225600", "1767312000", "1769904000",
                         "debit", "0", "req-1", "key_0123456789abcdef", "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8",
                         "2", "api_call", "", "1", "1000", "1", "tokens.input", "m", "1200", "150000"]
        for _ in benchmark.scaledIterations {
            blackHole(RedisCommand.fcall("authorize", keys: keys, arguments: arguments).encoded)
        }
    }

    Benchmark("RESP decode: an authorize reply (12 fields, 8 limits)") { benchmark in
        let bytes = authorizeReply
        for _ in benchmark.scaledIterations {
            blackHole(try? RESPValue.decode(bytes))
        }
    }
}
