import Testing
import TollgateCore
import TollgateRedis

@Suite("Engine: accounts, credits and debits")
struct EngineAccountTests {
    @Test("create, read, freeze and unfreeze an account")
    func lifecycle() async throws {
        let f = try await EngineFixture()
        let id = try AccountID("acme")
        let created = try await f.engine.createAccount(id, creditLimit: money("5"))
        #expect(created.status == .active && created.balance == .zero && created.creditLimit == money("5"))
        await #expect(throws: TollgateError(.accountExists, "an account with this id already exists")) {
            try await f.engine.createAccount(id)
        }
        #expect(try await f.engine.freeze(id).status == .frozen)
        #expect(try await f.engine.account(id).status == .frozen)
        #expect(try await f.engine.unfreeze(id).status == .active)
        do {
            _ = try await f.engine.account(try AccountID("nobody"))
            Issue.record("reading a missing account must fail")
        } catch {
            #expect(error.code == .accountNotFound)
        }
    }

    @Test("credits of each kind, and a debit, each write one ledger entry")
    func creditsAndDebit() async throws {
        let f = try await EngineFixture()
        let id = try await f.account("a")
        #expect(try await f.engine.credit(id, amount: money("10"), kind: .topup, requestID: request("t")).allowed)
        #expect(try await f.engine.credit(id, amount: money("2"), kind: .grant, requestID: request("g")).allowed)
        #expect(try await f.engine.credit(id, amount: money("-1.5"), kind: .adjustment, requestID: request("adj")).allowed)
        let debit = try await f.engine.debit(id, amount: money("0.25"), requestID: request("d"))
        #expect(debit.allowed && debit.balance == money("10.25") && debit.amount == money("0.25"))
        let entries = try await f.allEntries(id)
        #expect(entries.map(\.kind) == [.debit, .adjustment, .grant, .topup])
        #expect(entries.map(\.amount) == [money("-0.25"), money("-1.5"), money("2"), money("10")])
        #expect(entries.map(\.balance) == [money("10.25"), money("10.5"), money("12"), money("10")])
        #expect(entries.first?.requestID == "d")
        #expect(try await f.engine.audit().isClean)
    }

    @Test("a debit beyond available credit is denied and changes nothing; the credit limit allows overdraft up to it")
    func insufficientCreditAndCreditLimit() async throws {
        let f = try await EngineFixture()
        let id = try await f.account("a", balance: "1", creditLimit: "0.5")
        let denied = try await f.engine.debit(id, amount: money("1.500001"), requestID: request("too-much"))
        #expect(!denied.allowed && denied.reason == .insufficientCredit)
        #expect(denied.balance == money("1"))
        let allowed = try await f.engine.debit(id, amount: money("1.5"), requestID: request("just-enough"))
        #expect(allowed.allowed && allowed.balance == money("-0.5") && allowed.available == money("-0.5"))
        let next = try await f.engine.debit(id, amount: money("0.000001"), requestID: request("one-more"))
        #expect(!next.allowed)
        #expect(try await f.allEntries(id).count == 2)  // seed + one debit
        // The denied request id was not stored: after a top-up the same id is decided afresh.
        _ = try await f.engine.credit(id, amount: money("5"), requestID: request("topup"))
        #expect(try await f.engine.debit(id, amount: money("1.500001"), requestID: request("too-much")).allowed)
    }

    @Test("a frozen account refuses spending but accepts credit")
    func frozen() async throws {
        let f = try await EngineFixture()
        let id = try await f.account("a", balance: "10")
        _ = try await f.engine.freeze(id)
        let debit = try await f.engine.debit(id, amount: money("1"), requestID: request("d"))
        #expect(!debit.allowed && debit.reason == .accountFrozen)
        let hold = try await f.engine.hold(id, amount: money("1"), ttl: .seconds(30), requestID: request("h"))
        #expect(!hold.allowed && hold.reason == .accountFrozen)
        #expect(try await f.engine.credit(id, amount: money("1"), requestID: request("c")).allowed)
        _ = try await f.engine.unfreeze(id)
        #expect(try await f.engine.debit(id, amount: money("1"), requestID: request("d")).allowed)
    }

    @Test("a request id replayed returns the first answer and changes nothing; reused for another operation it is refused (I3)")
    func idempotency() async throws {
        let f = try await EngineFixture()
        let id = try await f.account("a", balance: "10")
        let first = try await f.engine.debit(id, amount: money("3"), requestID: request("r1"))
        _ = try await f.engine.debit(id, amount: money("1"), requestID: request("r2"))
        let again = try await f.engine.debit(id, amount: money("3"), requestID: request("r1"))
        #expect(first.allowed && again.allowed && again.replayed && !first.replayed)
        #expect(again.balance == first.balance)  // the first answer, not today's balance
        #expect(again.entryID == first.entryID)
        #expect(try await f.engine.account(id).balance == money("6"))
        do {
            _ = try await f.engine.debit(id, amount: money("4"), requestID: request("r1"))
            Issue.record("a request id reused with another amount must be refused")
        } catch {
            #expect(error.code == .idempotencyConflict)
        }
        #expect(try await f.engine.account(id).balance == money("6"))
        #expect(try await f.allEntries(id).count == 3)
    }

    @Test("ledger pages newest first with a cursor")
    func ledgerPaging() async throws {
        let f = try await EngineFixture()
        let id = try await f.account("a", balance: "100")
        for index in 0..<25 {
            f.clock.advance(by: .milliseconds(index % 3))  // several entries share a millisecond
            _ = try await f.engine.debit(id, amount: money("0.01"), requestID: request("d\(index)"))
        }
        var seen: [LedgerEntry] = []
        var cursor: String?
        var pages = 0
        repeat {
            let page = try await f.engine.ledger(id, limit: 10, cursor: cursor)
            seen += page.entries
            cursor = page.nextCursor
            pages += 1
        } while cursor != nil
        #expect(pages == 3)
        #expect(seen.count == 26)
        #expect(seen.map(\.requestID).prefix(3) == ["d24", "d23", "d22"])
        #expect(seen.last?.kind == .topup)
        #expect(Set(seen.map(\.id)).count == 26)
        await #expect(throws: TollgateError.self) { try await f.engine.ledger(id, limit: 0) }
        await #expect(throws: TollgateError.self) { try await f.engine.ledger(id, cursor: "not-a-cursor") }
    }

    @Test("account ids with any bytes work end to end", arguments: ["a{b}c", "}{", "with space", "new\nline", "naïve-😀", "\u{0}nul", "%7B"])
    func oddAccountIDs(raw: String) async throws {
        let f = try await EngineFixture()
        let id = try await f.account(raw, balance: "2")
        let other = try await f.account(raw + "x", balance: "5")
        #expect(try await f.engine.debit(id, amount: money("1"), requestID: request("d")).balance == money("1"))
        #expect(try await f.engine.account(other).balance == money("5"))
        let ids = try await f.engine.accountIDs()
        #expect(Set(ids) == [id, other])
        let hold = try await f.engine.hold(id, amount: money("1"), ttl: .seconds(5), requestID: request("h"))
        let holdID = try #require(hold.holdID)
        #expect(try await f.engine.release(try HoldID(parsing: holdID.description), requestID: request("rel")).allowed)
        #expect(try await f.engine.audit().isClean)
    }
}
