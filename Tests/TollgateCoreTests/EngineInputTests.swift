import Testing
import TollgateCore
import TollgateRedis

@Suite("Engine: bad input is rejected and changes nothing")
struct EngineInputTests {
    @Test("amounts at the edges are refused before they reach Redis", arguments: ["0", "-1", "1.0000001", "9007199254.740992", "1e3", "abc", ""])
    func edgesRefused(text: String) async throws {
        let f = try await EngineFixture()
        let id = try await f.account("a", balance: "5")
        do {
            let amount = try Money(parsing: text)
            _ = try await f.engine.debit(id, amount: amount, requestID: request("d"))
            Issue.record("'\(text)' must be refused")
        } catch {
            #expect(error.code == .invalidAmount)
        }
        let account = try await f.engine.account(id)
        #expect(account.balance == money("5"))
        #expect(try await f.allEntries(id).count == 1)
    }

    @Test("zero and negative amounts are refused by every operation")
    func zeroAndNegative() async throws {
        let f = try await EngineFixture()
        let id = try await f.account("a", balance: "5")
        let holdID = try #require(try await f.engine.hold(id, amount: money("1"), ttl: .seconds(30), requestID: request("h")).holdID)
        for amount in [Money.zero, money("-1")] {
            await #expect(throws: TollgateError.self) { try await f.engine.debit(id, amount: amount, requestID: request("x")) }
            await #expect(throws: TollgateError.self) { try await f.engine.credit(id, amount: amount, kind: .topup, requestID: request("x")) }
            await #expect(throws: TollgateError.self) { try await f.engine.credit(id, amount: amount, kind: .grant, requestID: request("x")) }
            await #expect(throws: TollgateError.self) { try await f.engine.hold(id, amount: amount, ttl: .seconds(1), requestID: request("x")) }
            await #expect(throws: TollgateError.self) { try await f.engine.capture(holdID, amount: amount, requestID: request("x")) }
        }
        await #expect(throws: TollgateError.self) { try await f.engine.credit(id, amount: .zero, kind: .adjustment, requestID: request("x")) }
        await #expect(throws: TollgateError.self) { try await f.engine.createAccount(try AccountID("b"), creditLimit: money("-1")) }
        let account = try await f.engine.account(id)
        #expect(account.balance == money("5") && account.held == money("1"))
        #expect(try await f.allEntries(id).count == 2)
    }

    @Test("a balance that would pass 2^53 micro-credits is refused and changes nothing")
    func overflow() async throws {
        let f = try await EngineFixture()
        let id = try await f.account("a", balance: "9007199254")
        do {
            _ = try await f.engine.credit(id, amount: money("1"), requestID: request("over"))
            Issue.record("crossing 2^53 must be refused")
        } catch {
            #expect(error.code == .amountOutOfRange)
        }
        #expect(try await f.engine.account(id).balance == money("9007199254"))
        #expect(try await f.engine.credit(id, amount: money("0.740991"), requestID: request("fits")).allowed)
    }

    @Test("the Lua itself refuses malformed numbers from any caller, changing nothing", arguments: [
        "0", "-5", "1.5", "1e3", "0x10", "abc", "", "9007199254740992", " 1",
    ])
    func luaValidates(raw: String) async throws {
        let f = try await EngineFixture()
        let id = try await f.account("a", balance: "5")
        let keys = [
            "tg:{a:a}:acct", "tg:{a:a}:ledger", "tg:{a:a}:holds", "tg:{a:a}:holdexp", "tg:{a:a}:idem:raw",
        ]
        let now: Int64 = 1_767_225_600_000
        let p = SpendPeriods(milliseconds: now)
        let periods = [p.hour, p.hourEnd, p.day, p.dayEnd, p.month, p.monthEnd].map(String.init)
        let reply = try await f.engine.redis.sendReturningErrors(.fcall("debit", keys: keys, arguments: [String(now)] + periods + [raw, "raw"]))
        guard case .error(let message) = reply else {
            Issue.record("expected an error reply, got \(reply)")
            return
        }
        #expect(message.hasPrefix("TOLLGATE invalid_argument"))
        // A malformed clock is refused; so is a well-formed one ("0") outside the periods given.
        let badClock = try await f.engine.redis.sendReturningErrors(.fcall("debit", keys: keys, arguments: [raw] + periods + ["1000", "raw2"]))
        guard case .error(let clockMessage) = badClock else {
            Issue.record("a malformed clock must be refused, got \(badClock)")
            return
        }
        #expect(clockMessage.hasPrefix("TOLLGATE invalid_argument"), "\(clockMessage)")
        #expect(try await f.engine.account(id).balance == money("5"))
    }

    @Test("operations on a missing account fail with account_not_found and create nothing")
    func missingAccount() async throws {
        let f = try await EngineFixture()
        let ghost = try AccountID("ghost")
        for operation in [
            { try await f.engine.debit(ghost, amount: money("1"), requestID: request("d")) },
            { try await f.engine.credit(ghost, amount: money("1"), requestID: request("c")) },
            { try await f.engine.hold(ghost, amount: money("1"), ttl: .seconds(1), requestID: request("h")) },
            { try await f.engine.capture(HoldID(account: ghost, sequence: 1), amount: money("1"), requestID: request("x")) },
        ] as [@Sendable () async throws -> Decision] {
            do {
                _ = try await operation()
                Issue.record("must fail")
            } catch let error as TollgateError {
                #expect(error.code == .accountNotFound)
            }
        }
        #expect(try await f.engine.accountIDs().isEmpty)
        // Only the coupon secret's fingerprint, which the engine records at start.
        #expect(try await f.engine.redis.scanKeys(matching: "*") == ["tg:coupon:key"])
    }

    @Test("audit reports drift: a balance changed behind the engine's back")
    func auditFindsDrift() async throws {
        let f = try await EngineFixture()
        let id = try await f.account("a", balance: "5")
        _ = try await f.account("b", balance: "1")
        #expect(try await f.engine.audit().isClean)
        _ = try await f.engine.redis.send("HINCRBY", "tg:{a:a}:acct", "balance", "1")
        let report = try await f.engine.audit()
        #expect(!report.isClean)
        #expect(report.drifting.map(\.account) == [id])
        #expect(report.drifting.first?.problems.first?.contains("ledger sums to 5") == true)
        _ = try await f.engine.redis.send("HINCRBY", "tg:{a:a}:acct", "balance", "-1")
        _ = try await f.engine.redis.send("HINCRBY", "tg:{a:a}:acct", "held", "7")
        #expect(try await !f.engine.audit().isClean)
    }
}

extension Money {
    static func - (lhs: Money, rhs: Money) -> Money {
        Money(micros: lhs.micros - rhs.micros) ?? .zero
    }
}
