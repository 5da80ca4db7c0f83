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
    static let hostile: [String] = [
        "", "0", "-0", "1", "-1", "2", "9007199254740991", "9007199254740992", "-9007199254740993", "1e308", "-1e308",
        "nan", "inf", "-inf", "0x10", " 1", "1 ", "1.5", "-1.5", "1e3", "9223372036854775807", "99999999999999999999999",
        "\u{0}", "\u{0}\u{FF}\u{FE}", "{a:x}", "tg:{a:other}:acct", "debit", "hold", "active", "frozen", "closed",
        "api_call", "tokens.input", String(repeating: "x", count: 5000), "void", "authorize|debit|0||api_call=1",
    ]

    /// A plausible argument list for `function`, from which cases are mutated.
    static func template(_ function: String, _ r: inout SplitMix64) -> [String] {
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

    /// Steps that read no clock or periods (the snapshots, the alert threshold, the trim of an
    /// archived ledger, and a coupon's creation, whose expiry is its own argument).
    static let withoutPeriods: Set<String> = ["audit_snapshot", "events_snapshot", "alert_set", "ledger_trim", "coupon_create"]

    /// Account steps whose reply is the fixed step reply (`reply()` in lua/10_account.lua).
    static let stepReplies = Set(accountFunctions).subtracting(["audit_snapshot", "events_snapshot", "alert_set"])

    /// KEYS as a faulty caller might send them: short, long, another account's key among this
    /// one's, a key of no account, a request id record of another account.
    static func hostileKeys(_ keys: [String], other: [String], _ r: inout SplitMix64) -> [String] {
        var keys = keys
        switch Int.random(in: 0..<6, using: &r) {
        case 0: keys.removeLast()
        case 1: keys.append(other[0])
        case 2: let index = Int.random(in: 0..<min(keys.count, other.count), using: &r); keys[index] = other[index]
        case 3: keys[Int.random(in: 0..<keys.count, using: &r)] = ["x", "", "tg:{a:x}:acct", "tg:{c:ab}:coupon", "tg:{a:}:acct"].randomElement(using: &r)!
        case 4: keys = keys.count > 4 ? Array(keys.prefix(4)) + [other[0].replacingOccurrences(of: "acct", with: "idem:f-1")] : keys + ["tg:{a:x}:idem:f-1"]
        default: keys = [keys[0].replacingOccurrences(of: "acct", with: "ledger")] + keys.dropFirst()
        }
        return keys
    }

    /// Periods that do not contain the step's time: garbage, another hour, another day or month.
    static func hostilePeriods(_ periods: [String], now: Int64, _ r: inout SplitMix64) -> [String] {
        var periods = periods
        let index = Int.random(in: 0..<periods.count, using: &r)
        switch Int.random(in: 0..<3, using: &r) {
        case 0: periods[index] = hostile.randomElement(using: &r)!
        case 1: periods = SpendPeriods(milliseconds: now + [-3_600_000, 3_600_000, -86_400_000, 40 * 86_400_000].randomElement(using: &r)!).arguments
        default: periods[index] = String((Int64(periods[index]) ?? 0) + [-1, 1].randomElement(using: &r)!)
        }
        return periods
    }

    @Test("4,000 random calls over every entry point, with hostile arguments, KEYS and periods: Tollgate refusals that change nothing (DEBUG DIGEST), or replies that tell the truth (each account's balance and held move by exactly its new ledger entries, as the reply says; a refusal or replay writes none of its own; a debit, credit or hold writes its one entry of its amount; no step touches another account); audit clean")
    func fuzz() async throws {
        let seed = TestSeed.draw("TOLLGATE_LUA_FUZZ_SEED", for: "Lua entry points fuzzed")
        let fixture = try await EngineFixture(redisArguments: ["--enable-debug-command", "local"])
        // DEBUG DIGEST covers one server's whole dataset: on a cluster the check is left out.
        let digests = fixture.redis.single != nil
        func digest() async throws -> String? {
            guard digests else { return nil }
            return try await fixture.engine.redis.send("DEBUG", "DIGEST").string
        }
        // A key whose TTL (in real time) runs out between two digests would look like a write
        // of the call between them: Redis expires keys only when they are read, here.
        if digests { _ = try await fixture.engine.redis.send("DEBUG", "SET-ACTIVE-EXPIRE", "0") }
        let accounts = [try await fixture.account("fz-a", balance: "100"), try await fixture.account("fz-b", balance: "3", creditLimit: "1")]
        var books = LedgerWatch(engine: fixture.engine)
        for id in accounts { try await books.mark(id) }
        var r = SplitMix64(seed: seed)
        var lastNow: Int64 = 1_800_000_000_000
        var unexpected: [String] = []
        var refused = 0
        var applied = 0
        var refusedKeys = 0
        for _ in 0..<4000 {
            let function = Self.functions.randomElement(using: &r)!
            let accountIndex = Int.random(in: 0..<accounts.count, using: &r)
            let account = accounts[accountIndex]
            let other = accounts[1 - accountIndex]
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
            if r.chance(20) { now = Self.hostile.randomElement(using: &r)! }
            var periods = SpendPeriods(milliseconds: lastNow).arguments
            var hostileShape = false
            if r.chance(20) {
                periods = Self.hostilePeriods(periods, now: lastNow, &r)
                hostileShape = periods != SpendPeriods(milliseconds: lastNow).arguments && !Self.withoutPeriods.contains(function)
            }
            let requestID = try RequestID("f-\(Int.random(in: 1...40, using: &r))")
            var target: AccountID? = account
            let command: RedisCommand
            switch function {
            case "coupon_create", "coupon_claim", "coupon_unclaim":
                target = nil
                let coupon = CouponCode.keys(hash: String(repeating: "ab", count: Int.random(in: 1...3, using: &r)))
                let keys = function == "coupon_create" ? [coupon.record] : [coupon.record, coupon.redeemers]
                // coupon_create reads the time first, like every account step; the others take their own arguments.
                let head = function == "coupon_create" ? [now] + periods : []
                command = RedisCommand(["FCALL", function, String(keys.count)] + keys + head + args)
            case "coupon_address_failed":
                target = nil
                command = RedisCommand(["FCALL", function, "1", "tg:couponfail:fz-\(Int.random(in: 1...2, using: &r))"] + args)
            case "coupon_rekey":
                command = RedisCommand(["FCALL", function, "1", AccountKeys(account).account] + args)
            default:
                if function == "account_create", Bool.random(using: &r) { target = try AccountID("fz-new-\(Int.random(in: 1...5, using: &r))") }
                var keys = AccountKeys(target!).forStep(Self.withoutRequestID.contains(function) ? nil : requestID)
                if r.chance(10) {
                    let changed = Self.hostileKeys(keys, other: AccountKeys(other).forStep(requestID), &r)
                    // Keys left off the end are refused by the steps that use them, and need
                    // not be by those that do not; a foreign or extra key is always refused.
                    hostileShape = hostileShape || !(changed.count <= keys.count && Array(keys.prefix(changed.count)) == changed)
                    keys = changed
                }
                command = RedisCommand(["FCALL", function, String(keys.count)] + keys + [now] + periods + args)
            }
            let call = "\(function)(\(args.map { String($0.prefix(40)) })) now=\(now.prefix(30)) \(hostileShape ? "with hostile keys or periods" : "")"
            let before = try await digest()
            let reply = try await fixture.engine.redis.sendReturningErrors(command)
            if case .error(let message) = reply {
                if message.hasPrefix("TOLLGATE ") || message.hasPrefix("CROSSSLOT ") {
                    refused += 1
                    if message.hasPrefix("TOLLGATE invalid_keys") { refusedKeys += 1 }
                } else {
                    unexpected.append("\(call): \(message.prefix(300))")
                }
                // Redis does not roll a function back: an error must come before any write.
                if let before, try await digest() != before {
                    unexpected.append("\(call) failed after writing: \(message.prefix(200))")
                }
                for id in accounts { unexpected += try await books.check(id, after: call).problems }
                continue
            }
            applied += 1
            if hostileShape, function != "coupon_rekey", target != nil {
                unexpected.append("\(call) was accepted: \(String(describing: reply).prefix(200))")
            }
            // The oracle: what each account's books did, against what the reply says.
            var effects: [AccountID: LedgerWatch.Effect] = [:]
            for id in accounts {
                let effect = try await books.check(id, after: call)
                unexpected += effect.problems
                effects[id] = effect
            }
            if let target, !accounts.contains(target) {
                // A created account starts empty.
                if let decision = try? Decision(stepReply: reply, account: target, function: function) {
                    if decision.account?.balance != .zero { unexpected.append("\(call): a new account with balance \(String(describing: decision.account))") }
                }
            }
            let untouched = target == nil || function == "coupon_rekey" ? accounts : accounts.filter { $0 != target }
            for id in untouched where !(effects[id]?.entries.isEmpty ?? true) || effects[id]?.moved == true {
                unexpected.append("\(call) changed the books of \(id), which it does not name")
            }
            guard let target, Self.stepReplies.contains(function), let effect = effects[target] else { continue }
            let decision: Decision
            do {
                decision = try Decision(stepReply: reply, account: target, function: function)
            } catch {
                unexpected.append("\(call): a reply the engine cannot read: \(error)")
                continue
            }
            unexpected += Self.oracle(function, args: args, decision: decision, effect: effect).map { "\(call): \($0)" }
        }
        print("FIGURE lua-fuzz seed \(seed): \(applied) replies, \(refused) refusals (\(refusedKeys) for their KEYS), \(unexpected.count) unexpected")
        #expect(unexpected.isEmpty, "seed \(seed):\n\(unexpected.prefix(10).joined(separator: "\n"))")
        #expect(applied > 500 && refused > 500 && refusedKeys > 10, "the fuzz no longer reaches both replies and refusals")
        let audit = try await fixture.engine.audit()
        #expect(audit.isClean, "\(audit.accounts.filter { !$0.isClean })")
        // I6, the engine owns the clock: no step read Redis's (a TIME called inside a function
        // is counted in the server's command statistics too).
        if digests {
            let stats = try await fixture.engine.redis.send("INFO", "commandstats").string ?? ""
            let lines = stats.split(whereSeparator: \.isNewline)
            #expect(lines.contains { $0.hasPrefix("cmdstat_fcall:") }, "no FCALL counted: the statistics would show no TIME either")
            #expect(!lines.contains { $0.hasPrefix("cmdstat_time:") }, "a step called TIME: \(lines.filter { $0.hasPrefix("cmdstat_time:") })")
        }
        fixture.redis.single?.stop()
    }

    /// What a step's reply must agree with in the books: the figures it reports are the stored
    /// ones; a refusal or a replay wrote no entry of its own (due expiries aside); an applied
    /// debit, credit or hold wrote its one entry, of the amount asked.
    static func oracle(_ function: String, args: [String], decision: Decision, effect: LedgerWatch.Effect) -> [String] {
        var problems: [String] = []
        // A replay is the first answer, with the figures of its time.
        if let state = decision.account, !decision.replayed {
            if state.balance.micros != effect.after.balance || state.held.micros != effect.after.held || state.promotional.micros != effect.after.promotional {
                problems.append("the reply says balance \(state.balance), held \(state.held), promotional \(state.promotional); Redis holds \(effect.after)")
            }
        }
        let own = effect.entries.filter { $0.kind != .expire }
        guard decision.allowed, !decision.replayed else {
            if !own.isEmpty { problems.append("a \(decision.replayed ? "replay" : "refusal") wrote \(own.map(\.kind))") }
            return problems
        }
        let asked = args.first.flatMap { Int64($0) }
        func one(_ kind: LedgerKind, amount: Int64, held: Int64) {
            guard own.count == 1, let entry = own.first, entry.kind == kind, entry.amount.micros == amount, entry.heldDelta.micros == held else {
                problems.append("expected one \(kind) entry of \(amount) (held \(held)), found \(own.map { "\($0.kind) \($0.amount) held \($0.heldDelta)" })")
                return
            }
        }
        switch function {
        case "debit":
            one(.debit, amount: -(asked ?? -1), held: 0)
            if decision.amount.micros != asked { problems.append("the reply says \(decision.amount), the call asked \(String(describing: asked))") }
        case "credit":
            let kind = args.count > 1 ? LedgerKind(rawValue: args[1]) : nil
            if let kind { one(kind, amount: asked ?? -1, held: 0) } else { problems.append("a credit of kind \(args.dropFirst().first ?? "none") was applied") }
        case "hold":
            one(.hold, amount: 0, held: asked ?? -1)
        default:
            break
        }
        return problems
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

    @Test("on a credit line in debt, promotional credit that would pass 2^53 is refused though the balance would not: nothing written, the next reply reads",
          .enabled(if: !TestRedis.isCluster, "reads DEBUG DIGEST of the one Redis"))
    func promotionalCreditBoundInDebt() async throws {
        let fixture = try await EngineFixture(redisArguments: ["--enable-debug-command", "local"])
        let id = try await fixture.account("in-debt", creditLimit: "1000")
        #expect(try await fixture.engine.debit(id, amount: money("1000"), requestID: request("spend")).allowed)
        #expect(try await fixture.engine.credit(id, amount: money("9007199000"), kind: .grant, requestID: request("g1")).allowed)
        let before = try await fixture.engine.redis.send("DEBUG", "DIGEST").string
        // The balance would end at 9,007,198,300 credits, in range; the promotional part at
        // 9,007,199,300, past 2^53 micro-credits.
        do {
            _ = try await fixture.engine.credit(id, amount: money("300"), kind: .grant, requestID: request("g2"))
            Issue.record("promotional credit beyond 2^53 micro-credits was accepted")
        } catch {
            #expect(error.code == .amountOutOfRange, "\(error)")
        }
        #expect(try await fixture.engine.redis.send("DEBUG", "DIGEST").string == before, "the refused grant wrote something")
        // Paid credit of the same amount fits: only the promotional part was out of range.
        let topUp = try await fixture.engine.credit(id, amount: money("300"), requestID: request("t"))
        #expect(topUp.allowed && topUp.account?.balance == money("9007198300"))
        #expect(try await fixture.engine.audit().isClean)
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
