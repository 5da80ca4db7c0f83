import Testing
@testable import TollgateCore
import TollgateRedis

/// The Lua entry points called directly (FCALL), with random and hostile arguments: each one
/// refuses with a Tollgate error (`TOLLGATE <code> ...`) or acts correctly, never fails half-way
/// with a Lua runtime error (Redis does not roll back a script), and `audit` stays clean.
@Suite("Lua entry points: random and hostile arguments")
struct LuaFuzzTests {
    /// SplitMix64: the same cases on every run for a given seed.
    struct Random: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let hostile: [String] = [
        "", "0", "-0", "1", "-1", "2", "9007199254740991", "9007199254740992", "-9007199254740993", "1e308", "-1e308",
        "nan", "inf", "-inf", "0x10", " 1", "1 ", "1.5", "-1.5", "1e3", "9223372036854775807", "99999999999999999999999",
        "\u{0}", "\u{0}\u{FF}\u{FE}", "{a:x}", "tg:{a:other}:acct", "debit", "hold", "active", "frozen", "closed",
        "api_call", "tokens.input", String(repeating: "x", count: 5000), "void", "authorize|debit|0||api_call=1",
    ]

    /// A plausible argument list for `function`, from which cases are mutated.
    static func template(_ function: String, _ r: inout Random) -> [String] {
        func amount() -> String { String(Int.random(in: 1...5_000_000, using: &r)) }
        func seq() -> String { String(Int.random(in: 1...4, using: &r)) }
        func rid() -> String { "f-\(Int.random(in: 1...40, using: &r))" }
        func usage() -> [String] {
            let count = Int.random(in: 1...3, using: &r)
            var items = [String(count)]
            for _ in 0..<count {
                items += [["api_call", "tokens.input", "m"].randomElement(using: &r)!, ["", "gpt"].randomElement(using: &r)!,
                          String(Int.random(in: 0...5000, using: &r)), ["1000", "-1", "150000"].randomElement(using: &r)!,
                          ["1", "1000000"].randomElement(using: &r)!]
            }
            return items
        }
        switch function {
        case "account_get": return []
        case "account_set_status": return [["active", "frozen"].randomElement(using: &r)!]
        case "credit": return [amount(), ["topup", "grant", "adjustment"].randomElement(using: &r)!, rid(), ""]
        case "debit": return [amount(), rid()]
        case "hold": return [amount(), String(Int.random(in: 1...100_000, using: &r)), rid()]
        case "capture": return [seq(), amount(), rid()]
        case "release": return [seq(), rid()]
        case "limits_set": return ["account", ["rpm", "tpm", "conc", "cap_d"].randomElement(using: &r)!, String(Int.random(in: 0...100, using: &r))]
        case "key_revoke": return ["key_0000000000000001"]
        case "alert_set": return [amount()]
        case "authorize":
            return [["debit", "hold"].randomElement(using: &r)!, String(Int.random(in: 1...100_000, using: &r)), rid(), "", ""] + usage()
        case "report": return [seq(), rid()] + usage()
        case "settle": return [seq(), rid(), ["0", "1"].randomElement(using: &r)!] + usage()
        case "void": return [rid()]
        case "journal_debit": return [rid(), ""] + usage()
        default: return []
        }
    }

    static let functions = ["account_get", "account_set_status", "credit", "debit", "hold", "capture", "release", "limits_set",
                            "key_revoke", "alert_set", "authorize", "report", "settle", "void", "journal_debit"]

    @Test("2,000 random calls per seed: Tollgate refusals or correct replies only; audit clean", arguments: [UInt64(1), 2])
    func fuzz(seed: UInt64) async throws {
        let fixture = try await EngineFixture()
        let accounts = [try await fixture.account("fz-\(seed)-a", balance: "100"), try await fixture.account("fz-\(seed)-b", balance: "3", creditLimit: "1")]
        var r = Random(state: seed)
        var lastNow: Int64 = 1_800_000_000_000
        var unexpected: [String] = []
        var refused = 0
        var applied = 0
        for _ in 0..<2000 {
            let function = Self.functions.randomElement(using: &r)!
            let account = accounts.randomElement(using: &r)!
            var args = Self.template(function, &r)
            switch Int.random(in: 0..<10, using: &r) {
            case 0..<4: break
            case 4..<8:
                // Mutate one or two arguments (or add one).
                for _ in 0..<Int.random(in: 1...2, using: &r) {
                    let index = Int.random(in: 0...args.count, using: &r)
                    let value = Self.hostile.randomElement(using: &r)!
                    if index == args.count { args.append(value) } else { args[index] = value }
                }
            case 8: args = args.isEmpty ? [] : Array(args.prefix(Int.random(in: 0..<args.count, using: &r)))
            default: args = (0..<Int.random(in: 0...12, using: &r)).map { _ in Self.hostile.randomElement(using: &r)! }
            }
            // The clock moves forward mostly; sometimes it steps back or is hostile.
            lastNow += Int64.random(in: 0...2000, using: &r)
            var now = String(lastNow)
            if Int.random(in: 0..<20, using: &r) == 0 { now = Self.hostile.randomElement(using: &r)! }
            let periods = SpendPeriods(milliseconds: lastNow).arguments
            let requestID = try RequestID(args.count > 2 && function != "authorize" ? "f-\(Int.random(in: 1...40, using: &r))" : "f-\(Int.random(in: 1...40, using: &r))")
            let keys = AccountKeys(account).forStep(["account_get", "account_set_status", "limits_set", "key_revoke", "alert_set"].contains(function) ? nil : requestID)
            let command = RedisCommand(["FCALL", function, String(keys.count)] + keys + [now] + periods + args)
            let reply = try await fixture.engine.redis.sendReturningErrors(command)
            if case .error(let message) = reply {
                if message.hasPrefix("TOLLGATE ") { refused += 1 } else {
                    unexpected.append("\(function)(\(args.map { String($0.prefix(40)) })) now=\(now.prefix(30)): \(message.prefix(300))")
                }
            } else {
                applied += 1
            }
        }
        print("FIGURE lua-fuzz seed \(seed): \(applied) replies, \(refused) Tollgate refusals, \(unexpected.count) unexpected errors")
        #expect(unexpected.isEmpty, "\(unexpected.prefix(10).joined(separator: "\n"))")
        let audit = try await fixture.engine.audit()
        #expect(audit.isClean, "\(audit.accounts.filter { !$0.isClean })")
        fixture.redis.single?.stop()
    }
}
