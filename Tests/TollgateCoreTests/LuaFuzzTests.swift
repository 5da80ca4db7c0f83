import Testing
@testable import TollgateCore
import TollgateRedis
import TollgateTestSupport

/// The Lua entry points called directly (FCALL), every one the library registers, with random
/// and hostile arguments: each refuses with a Tollgate error (`TOLLGATE <code> ...`) or acts
/// correctly, never fails with a Lua runtime error, and a call that fails changed nothing
/// (`DEBUG DIGEST` before and after: Redis does not roll back a function that errors after
/// writing). `audit` stays clean.
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
                          // Quantities up to 2^53 - 1 of a free meter (price 0) pile up in the aggregates.
                          Int.random(in: 0..<4, using: &r) == 0 ? "9007199254740991" : String(Int.random(in: 0...5000, using: &r)),
                          ["1000", "-1", "150000", "0"].randomElement(using: &r)!,
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
        case "account_create": return [["0", amount()].randomElement(using: &r)!]
        case "key_create": return ["key_\(Int.random(in: 1...3, using: &r))", "abc123"]
        case "audit_snapshot", "events_snapshot": return []
        case "coupon_precheck": return ["3", String(Int.random(in: 0...4, using: &r)), String(Int.random(in: 0...60_000, using: &r)),
                                        "ab\(Int.random(in: 1...5, using: &r))"]
        case "coupon_credit": return ["ab\(Int.random(in: 1...5, using: &r))", "ref", amount(), ["0", "1900000000000"].randomElement(using: &r)!, "60000"]
        case "coupon_fail": return [["invalid", "expired", "exhausted"].randomElement(using: &r)!, "60000"]
        case "deposit_create":
            return ["dep_\(Int.random(in: 1...6, using: &r))", amount(), "USDT", "5", ["moonpay", "alchemypay"].randomElement(using: &r)!, "TRON", "TAddr"]
        case "deposit_complete":
            return ["dep_\(Int.random(in: 1...6, using: &r))", ["moonpay", "alchemypay"].randomElement(using: &r)!, "tx-\(Int.random(in: 1...4, using: &r))",
                    ["completed", "failed", "rejected"].randomElement(using: &r)!, amount(), "5 usdt", "wrong_destination"]
        case "ledger_trim": return ["\(1_800_000_000_000 + Int.random(in: 0...100_000, using: &r))-0", "1800000000000-0"]
        // The coupon's own slot, and a client address's counter (keys of their own).
        case "coupon_create": return [amount(), String(Int.random(in: 1...3, using: &r)), "1900000000000", "", ["0", "1900000000000"].randomElement(using: &r)!,
                                      ["b1", "b2"].randomElement(using: &r)!, ["f1", "f2"].randomElement(using: &r)!]
        case "coupon_claim": return [String(Int.random(in: 1_800_000_000_000...1_800_000_100_000, using: &r)), "fz-a", ["0", "1"].randomElement(using: &r)!]
        case "coupon_unclaim": return ["fz-a"]
        case "coupon_address_failed": return ["60000"]
        case "coupon_rekey": return ["ab\(Int.random(in: 1...5, using: &r))", "cd\(Int.random(in: 1...5, using: &r))"]
        default: return []
        }
    }

    /// Steps on an account (the account's keys, and a request id's for mutations).
    static let accountFunctions = ["account_get", "account_set_status", "credit", "debit", "hold", "capture", "release", "limits_set",
                                   "key_revoke", "alert_set", "authorize", "report", "settle", "void", "journal_debit",
                                   "account_create", "key_create", "audit_snapshot", "events_snapshot", "coupon_precheck",
                                   "coupon_credit", "coupon_fail", "deposit_create", "deposit_complete", "ledger_trim"]
    /// Steps whose keys are not an account's: a coupon's record and redeemers, an address's
    /// counter; and the move of an account's coupon marker, which takes the account hash alone.
    static let otherFunctions = ["coupon_create", "coupon_claim", "coupon_unclaim", "coupon_address_failed", "coupon_rekey"]
    static let functions = accountFunctions + otherFunctions
    /// Account steps that take no request id.
    static let withoutRequestID: Set<String> = ["account_get", "account_set_status", "limits_set", "key_revoke", "alert_set",
                                                "account_create", "key_create", "audit_snapshot", "events_snapshot",
                                                "coupon_fail", "deposit_create",
                                                "deposit_complete", "ledger_trim"]

    @Test("every function the library registers is fuzzed")
    func everyEntryPointIsFuzzed() throws {
        let code = TollgateLua.library.code
        var registered: Set<String> = []
        for pattern in [#"register_function\('([a-z_]+)'"#, #"function_name = '([a-z_]+)'"#] {
            let regex = try Regex(pattern)
            for match in code.matches(of: regex) {
                if let name = match.output[1].substring { registered.insert(String(name)) }
            }
        }
        // The build's fingerprint takes no input.
        registered.remove("library_fingerprint")
        #expect(registered.count >= 29, "\(registered.sorted())")
        #expect(registered == Set(Self.functions), "not fuzzed: \(registered.subtracting(Self.functions).sorted()); gone: \(Set(Self.functions).subtracting(registered).sorted())")
    }

    @Test("2,000 random calls per seed over every entry point: Tollgate refusals or correct replies only, a refusal changes nothing (DEBUG DIGEST); audit clean",
          arguments: [UInt64(1), 2])
    func fuzz(seed: UInt64) async throws {
        let fixture = try await EngineFixture(redisArguments: ["--enable-debug-command", "local"])
        // DEBUG DIGEST covers one server's whole dataset: on a cluster the check is left out.
        let digests = fixture.redis.single != nil
        func digest() async throws -> String? {
            guard digests else { return nil }
            return try await fixture.engine.redis.send("DEBUG", "DIGEST").string
        }
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
            let requestID = try RequestID("f-\(Int.random(in: 1...40, using: &r))")
            let command: RedisCommand
            switch function {
            case "coupon_create", "coupon_claim", "coupon_unclaim":
                let coupon = CouponCode.keys(hash: String(repeating: "ab", count: Int.random(in: 1...3, using: &r)))
                let keys = function == "coupon_create" ? [coupon.record] : [coupon.record, coupon.redeemers]
                // coupon_create reads the time first, like every account step; the others take their own arguments.
                let head = function == "coupon_create" ? [now] + periods : []
                command = RedisCommand(["FCALL", function, String(keys.count)] + keys + head + args)
            case "coupon_address_failed":
                command = RedisCommand(["FCALL", function, "1", "tg:couponfail:fz-\(Int.random(in: 1...2, using: &r))"] + args)
            case "coupon_rekey":
                command = RedisCommand(["FCALL", function, "1", AccountKeys(account).account] + args)
            default:
                var target = account
                if function == "account_create", Bool.random(using: &r) { target = try AccountID("fz-\(seed)-new-\(Int.random(in: 1...5, using: &r))") }
                let keys = AccountKeys(target).forStep(Self.withoutRequestID.contains(function) ? nil : requestID)
                command = RedisCommand(["FCALL", function, String(keys.count)] + keys + [now] + periods + args)
            }
            let before = try await digest()
            let reply = try await fixture.engine.redis.sendReturningErrors(command)
            if case .error(let message) = reply {
                let call = "\(function)(\(args.map { String($0.prefix(40)) })) now=\(now.prefix(30))"
                if message.hasPrefix("TOLLGATE ") { refused += 1 } else {
                    unexpected.append("\(call): \(message.prefix(300))")
                }
                // Redis does not roll a function back: an error must come before any write.
                if let before, try await digest() != before {
                    unexpected.append("\(call) failed after writing: \(message.prefix(200))")
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

    @Test("a step whose usage aggregate would overflow completes whole: the aggregate stays at the bound, the books balance")
    func aggregateOverflowDoesNotHalfWrite() async throws {
        let fixture = try await EngineFixture()
        let id = try await fixture.account("agg", balance: "10")
        let month = AccountKeys(id).usage("m", SpendPeriods(milliseconds: fixture.clock.nowMilliseconds()).month)
        // The month's aggregate of plain debits one micro-credit short of Redis's integer bound.
        _ = try await fixture.engine.redis.send("HSET", month, "c|||", String(Int64.max - 1))
        let debit = try await fixture.engine.debit(id, amount: money("2"), requestID: request("over"))
        #expect(debit.allowed)
        #expect(try await fixture.engine.redis.send("HGET", month, "c|||").string == String(Int64.max))
        #expect(try await fixture.engine.account(id).balance == money("8"))
        #expect(try await fixture.engine.audit().isClean)
        // A repeat is the same answer, once.
        let again = try await fixture.engine.debit(id, amount: money("2"), requestID: request("over"))
        #expect(again.replayed && again.account?.balance == money("8"))
    }

    @Test("a credit refused as out of range, with a grant's expiry due, writes nothing (not even the expiry)",
          .enabled(if: !TestRedis.isCluster, "reads DEBUG DIGEST of the one Redis"))
    func refusalWithExpiryDueWritesNothing() async throws {
        let fixture = try await EngineFixture(redisArguments: ["--enable-debug-command", "local"])
        let id = try await fixture.account("full", balance: "9007199000")
        let expires = fixture.clock.nowMilliseconds() + 1000
        #expect(try await fixture.engine.credit(id, amount: money("100"), kind: .grant, expires: expires, requestID: request("g")).allowed)
        fixture.clock.advance(by: .seconds(2))
        let before = try await fixture.engine.redis.send("DEBUG", "DIGEST").string
        do {
            _ = try await fixture.engine.credit(id, amount: money("300"), requestID: request("too-much"))
            Issue.record("a credit beyond 2^53 micro-credits was accepted")
        } catch {
            #expect(error.code == .amountOutOfRange, "\(error)")
        }
        #expect(try await fixture.engine.redis.send("DEBUG", "DIGEST").string == before, "the refused credit wrote something")
        // The next step writes the expiry, dated at its time.
        let account = try await fixture.engine.account(id)
        #expect(account.balance == money("9007199000"))
        #expect(try await fixture.engine.audit().isClean)
    }
}
