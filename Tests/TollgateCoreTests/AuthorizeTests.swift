import Testing
import TollgateCore
import TollgateRedis

private func usage(_ text: String) -> [UsageItem] {
    do { return try UsageItem.parseList(text) } catch { preconditionFailure("bad test usage \(text)") }
}

extension EngineFixture {
    func price(_ key: String, _ price: String, per: Int64 = 1) async throws {
        try await engine.setPrice(try PriceKey(parsing: key), try Price(parsing: price, per: per))
    }

    func limits(_ scope: LimitScope, counts: [LimitName: Int64] = [:], caps: [LimitName: String] = [:]) async throws {
        var update = LimitsUpdate()
        for (name, value) in counts { try update.set(name, count: value) }
        for (name, value) in caps { try update.set(name, amount: money(value)) }
        try await engine.setLimits(scope, update)
    }
}

extension Price {
    init(parsing price: String, per: Int64) throws {
        try self.init(price: try Money(parsing: price), per: per)
    }
}

@Suite("authorize: prices, keys, limits and caps in one atomic step")
struct AuthorizeTests {
    @Test("1,000,000 input tokens at 0.15 per million, in any random split into batches, total 0.15 within 1 micro-credit")
    func exactnessOfSplits() async throws {
        let f = try await EngineFixture()
        try await f.price("tokens.input@m", "0.15", per: 1_000_000)
        var generator = SystemRandomNumberGenerator()
        for round in 0..<6 {
            let id = try await f.account("split\(round)", balance: "1")
            var left: Int64 = 1_000_000
            var batch = 0
            while left > 0 {
                let size = min(left, [1, 7, 333, 4999, 65_537, 250_000].randomElement(using: &generator)! + Int64.random(in: 0...10, using: &generator))
                let decision = try await f.engine.authorize(.account(id), usage: [try UsageItem(meter: "tokens.input", model: "m", quantity: size)],
                                                            requestID: request("r\(round)-\(batch)"))
                #expect(decision.allowed)
                left -= size
                batch += 1
            }
            let charged = money("1").micros - (try await f.engine.account(id).balance.micros)
            #expect(abs(charged - 150_000) <= 1, "round \(round): \(batch) batches charged \(charged) micro-credits")
        }
        // The same through a hold: reports in random batches, then settle on what was reported.
        let id = try await f.account("held", balance: "1")
        let hold = try #require(try await f.engine.authorize(.account(id), usage: usage("tokens.input@m=1000000"), requestID: request("h"),
                                                              mode: .hold(ttl: .seconds(60))).holdID)
        var left: Int64 = 1_000_000
        var batch = 0
        while left > 0 {
            let size = min(left, Int64.random(in: 1...90_000, using: &generator))
            #expect(try await f.engine.report(hold, usage: [try UsageItem(meter: "tokens.input", model: "m", quantity: size)], requestID: request("b\(batch)")).allowed)
            left -= size
            batch += 1
        }
        let settled = try await f.engine.settle(hold, usage: nil, requestID: request("s"))
        #expect(settled.allowed && settled.account?.held == .zero)
        #expect(abs((settled.balance?.micros ?? 0) - 850_000) <= 1)
        #expect(try await f.engine.audit().isClean)
    }

    @Test("--rpm 5 admits 5 at once, then one every 12 s, exactly at the millisecond")
    func rpmWindowEdges() async throws {
        let f = try await EngineFixture()
        try await f.price("api_call", "0.001")
        let id = try await f.account("a", balance: "10")
        try await f.limits(.account(id), counts: [.rpm: 5])
        func call(_ n: Int) async throws -> Decision {
            try await f.engine.authorize(.account(id), usage: usage("api_call=1"), requestID: request("c\(n)"))
        }
        for n in 0..<5 { #expect(try await call(n).allowed) }
        let sixth = try await call(5)
        #expect(!sixth.allowed && sixth.reason == .rateLimited && sixth.retryAfterMilliseconds == 12_000)
        #expect(sixth.limits.first { $0.qualifiedName == "account.rpm" }?.remaining == 0)
        f.clock.advance(by: .milliseconds(11_999))
        let early = try await call(6)
        #expect(!early.allowed && early.retryAfterMilliseconds == 1)
        f.clock.advance(by: .milliseconds(1))
        #expect(try await call(7).allowed)
        #expect(try await !call(8).allowed)
        f.clock.advance(by: .seconds(60))
        for n in 9..<14 { #expect(try await call(n).allowed) }
        #expect(try await !call(14).allowed)
        // The denials changed nothing: 11 calls charged.
        #expect(try await f.engine.account(id).balance == money("9.989"))
    }

    @Test("rps with a burst, and spend caps on UTC hour, day and month boundaries")
    func burstAndCaps() async throws {
        let f = try await EngineFixture()
        try await f.price("api_call", "1")
        let id = try await f.account("a", balance: "1000")
        try await f.limits(.account(id), counts: [.rps: 2, .burst: 4])
        for n in 0..<4 { #expect(try await f.engine.authorize(.account(id), usage: usage("api_call=1"), requestID: request("b\(n)")).allowed) }
        let fifth = try await f.engine.authorize(.account(id), usage: usage("api_call=1"), requestID: request("b4"))
        #expect(fifth.reason == .rateLimited && fifth.retryAfterMilliseconds == 500)

        // Hourly cap of 3 credits: the clock is set to 1 s before the top of an hour.
        let g = try await EngineFixture()
        try await g.price("api_call", "1")
        let capped = try await g.account("c", balance: "1000")
        try await g.limits(.account(capped), caps: [.hourlyCap: "3", .lifetimeCap: "5"])
        let hourEnd = SpendPeriods(milliseconds: g.clock.nowMilliseconds()).hourEnd
        g.clock.set(milliseconds: hourEnd - 1000)
        for n in 0..<3 { #expect(try await g.engine.authorize(.account(capped), usage: usage("api_call=1"), requestID: request("h\(n)")).allowed) }
        let over = try await g.engine.authorize(.account(capped), usage: usage("api_call=1"), requestID: request("h3"))
        #expect(over.reason == .spendCapReached && over.retryAfterMilliseconds == 1000)
        g.clock.advance(by: .milliseconds(999))
        #expect(try await !g.engine.authorize(.account(capped), usage: usage("api_call=1"), requestID: request("h4")).allowed)
        g.clock.advance(by: .milliseconds(1))
        #expect(try await g.engine.authorize(.account(capped), usage: usage("api_call=1"), requestID: request("h5")).allowed)
        #expect(try await g.engine.authorize(.account(capped), usage: usage("api_call=1"), requestID: request("h6")).allowed)
        let lifetime = try await g.engine.authorize(.account(capped), usage: usage("api_call=1"), requestID: request("h7"))
        #expect(lifetime.reason == .spendCapReached && lifetime.retryAfterMilliseconds == nil)
    }

    @Test("64 concurrent tasks on one key with a request-rate limit admit exactly what the limit allows")
    func concurrentKeyRateLimit() async throws {
        let f = try await EngineFixture(connections: 4)
        try await f.price("api_call", "0.01")
        let id = try await f.account("a", balance: "100")
        let key = try await f.engine.createKey(for: id)
        try await f.limits(.key(key.keyID), counts: [.rpm: 37])
        let allowed = try await withThrowingTaskGroup(of: Int.self) { group in
            for task in 0..<64 {
                group.addTask {
                    var count = 0
                    for n in 0..<5 {
                        let decision = try await f.engine.authorize(.key(secret: key.secret), usage: usage("api_call=1"), requestID: request("t\(task)-\(n)"))
                        if decision.allowed { count += 1 } else { #expect(decision.reason == .rateLimited) }
                    }
                    return count
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(allowed == 37)
        #expect(try await f.engine.account(id).balance == money("99.63"))
    }

    @Test("hold mode: concurrency slots, token rate reserved by the estimate and refunded on settle")
    func holdsAgainstLimits() async throws {
        let f = try await EngineFixture()
        try await f.price("tokens.output", "0.000002")
        let id = try await f.account("a", balance: "100")
        try await f.limits(.account(id), counts: [.concurrency: 2, .tpm: 1000])
        let first = try await f.engine.authorize(.account(id), usage: usage("tokens.output=600"), requestID: request("h1"), mode: .hold(ttl: .seconds(30)))
        #expect(first.allowed && first.account?.held == money("0.0012"))
        let second = try await f.engine.authorize(.account(id), usage: usage("tokens.output=500"), requestID: request("h2"), mode: .hold(ttl: .seconds(30)))
        #expect(second.reason == .tokenRateLimited)
        #expect(second.retryAfterMilliseconds == 6000)  // 100 tokens short at 1000 per minute
        // Settling the first on 100 tokens gives back 500 tokens of allowance at once.
        let settled = try await f.engine.settle(try #require(first.holdID), usage: usage("tokens.output=100"), requestID: request("s1"))
        #expect(settled.allowed && settled.amount == money("0.0002") && settled.account?.held == .zero)
        #expect(try await f.engine.authorize(.account(id), usage: usage("tokens.output=500"), requestID: request("h3"), mode: .hold(ttl: .seconds(30))).allowed)
        #expect(try await f.engine.authorize(.account(id), usage: usage("tokens.output=1"), requestID: request("h4"), mode: .hold(ttl: .seconds(30))).allowed)
        let third = try await f.engine.authorize(.account(id), usage: usage("tokens.output=1"), requestID: request("h5"), mode: .hold(ttl: .seconds(30)))
        #expect(third.reason == .concurrencyLimited && third.retryAfterMilliseconds == nil)
        // Expiry frees the slots.
        f.clock.advance(by: .seconds(30))
        #expect(try await f.engine.authorize(.account(id), usage: usage("tokens.output=1"), requestID: request("h6"), mode: .hold(ttl: .seconds(30))).allowed)
        #expect(try await f.engine.audit().isClean)
    }

    @Test("report beyond the hold draws on available credit or is denied; settle refunds an overcharge")
    func reportAndSettle() async throws {
        let f = try await EngineFixture()
        try await f.price("tokens.input", "1", per: 1000)
        let id = try await f.account("a", balance: "5")
        let hold = try #require(try await f.engine.authorize(.account(id), usage: usage("tokens.input=2000"), requestID: request("h"), mode: .hold(ttl: .seconds(30))).holdID)
        #expect(try await f.engine.report(hold, usage: usage("tokens.input=1500"), requestID: request("r1")).allowed)
        let beyond = try await f.engine.report(hold, usage: usage("tokens.input=1500"), requestID: request("r2"))
        #expect(beyond.allowed && beyond.balance == money("2") && beyond.account?.held == .zero)
        let denied = try await f.engine.report(hold, usage: usage("tokens.input=2001"), requestID: request("r3"))
        #expect(!denied.allowed && denied.reason == .insufficientCredit && denied.balance == money("2"))
        // The call really used 1000 tokens: settle refunds 2 credits.
        let settled = try await f.engine.settle(hold, usage: usage("tokens.input=1000"), requestID: request("s"))
        #expect(settled.allowed && settled.amount == money("1") && settled.balance == money("4"))
        let entries = try await f.allEntries(id)
        #expect(entries.map(\.kind).prefix(2) == [.release, .refund])
        #expect(try await f.engine.audit().isClean)
    }

    @Test("unknown and revoked keys, frozen accounts and unknown meters are denied and change nothing")
    func denials() async throws {
        let f = try await EngineFixture()
        try await f.price("api_call", "0.5")
        try await f.price("tokens.input@big", "2", per: 1000)
        let id = try await f.account("a", balance: "5")
        let key = try await f.engine.createKey(for: id)
        let unknown = try await f.engine.authorize(.key(secret: "tgk_nope"), usage: usage("api_call=1"), requestID: request("u"))
        #expect(unknown.reason == .unknownKey && unknown.account == nil)
        #expect(try await f.engine.authorize(.key(secret: key.secret), usage: usage("api_call=1"), requestID: request("ok")).allowed)
        #expect(try await f.engine.authorize(.account(id), usage: usage("nope=1"), requestID: request("m1")).reason == .unknownMeter)
        #expect(try await f.engine.authorize(.account(id), usage: usage("tokens.input@small=1"), requestID: request("m2")).reason == .unknownMeter)
        #expect(try await f.engine.authorize(.account(id), usage: usage("tokens.input@big=1000"), requestID: request("m3")).amount == money("2"))
        _ = try await f.engine.freeze(id)
        #expect(try await f.engine.authorize(.key(secret: key.secret), usage: usage("api_call=1"), requestID: request("f")).reason == .accountFrozen)
        _ = try await f.engine.unfreeze(id)
        try await f.engine.revokeKey(key.keyID)
        #expect(try await f.engine.authorize(.key(secret: key.secret), usage: usage("api_call=1"), requestID: request("r")).reason == .keyRevoked)
        #expect(try await f.engine.keys(of: id).first?.status == "revoked")
        #expect(try await f.engine.account(id).balance == money("2.5"))
        #expect(try await f.allEntries(id).count == 3)
    }

    @Test("a price change reaches a running engine without restart (it re-reads the price book every 500 ms)")
    func priceChangePropagates() async throws {
        let f = try await EngineFixture()
        let other = try await Engine.start(redis: f.redis.client(), clock: f.clock)
        try await f.price("api_call", "1")
        let id = try await f.account("a", balance: "100")
        #expect(try await other.authorize(.account(id), usage: usage("api_call=1"), requestID: request("1")).amount == money("1"))
        try await f.price("api_call", "2")
        // A generous deadline: this checks that the change arrives, not how fast on a busy machine.
        let deadline = ContinuousClock.now + .seconds(15)
        var seen = money("1")
        var n = 2
        while ContinuousClock.now < deadline, seen != money("2") {
            seen = try await other.authorize(.account(id), usage: usage("api_call=1"), requestID: request("\(n)")).amount
            n += 1
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(seen == money("2"))
    }

    @Test("usage lists parse, and malformed ones are refused", arguments: [
        ("api_call=1", 1), ("tokens.input@m=1200,tokens.output@m=300", 2), (" api_call=2 ", 1),
    ])
    func usageParsing(text: String, count: Int) throws {
        #expect(try UsageItem.parseList(text).count == count)
    }

    @Test("bad usage lists are refused", arguments: ["", "api_call", "api_call=", "api_call=-1", "api_call=1.5", "=1", "a b=1", "x@=1", "api_call=1,"])
    func badUsage(text: String) {
        #expect(throws: TollgateError.self) { try UsageItem.parseList(text) }
    }

    @Test("UTC periods: hours, days and calendar months including leap years")
    func periods() {
        // 2028-02-29T23:59:59.999Z is in February of a leap year; 1 ms later is March.
        let lastOfFebruary: Int64 = 1_835_481_599_999
        let p = SpendPeriods(milliseconds: lastOfFebruary)
        #expect(p.monthEnd == lastOfFebruary + 1 && p.dayEnd == lastOfFebruary + 1 && p.hourEnd == lastOfFebruary + 1)
        let q = SpendPeriods(milliseconds: lastOfFebruary + 1)
        #expect(q.month == p.month + 1 && q.day == p.day + 1 && q.hour == p.hour + 1)
        // December rolls into January of the next year.
        let newYear: Int64 = 1_798_761_600_000  // 2027-01-01T00:00:00Z
        #expect(SpendPeriods(milliseconds: newYear - 1).monthEnd == newYear)
        #expect(SpendPeriods(milliseconds: newYear).month == SpendPeriods(milliseconds: newYear - 1).month + 1)
    }
}
