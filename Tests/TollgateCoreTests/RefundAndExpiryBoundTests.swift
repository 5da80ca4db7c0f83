import Foundation
import Testing
@testable import TollgateCore
import TollgateRedis

/// Refunds at settle are bounded by what the hold charged, per item; promotional credit
/// expires on an account in debt, held back only by what open holds reserve.
@Suite("Refund and expiry bounds: settle after a price change, grant expiry in debt")
struct RefundAndExpiryBoundTests {
    private static func micros(_ n: Int64) -> Money { Money(micros: n)! }

    @Test("a settle after a price cut refunds no more than the hold charged for the item")
    func settleRefundBoundedAfterPriceCut() async throws {
        let f = try await EngineFixture()
        let id = try await f.account("cut", balance: "100")
        let meter = try PriceKey(meter: "tokens.out")
        try await f.engine.setPrice(meter, try Price(price: Self.micros(10), per: 1))
        let hold = try #require(try await f.engine.authorize(
            .account(id), usage: [try UsageItem(meter: "tokens.out", quantity: 1000)],
            requestID: request("a"), mode: .hold(ttl: .seconds(60))).holdID)
        let r1 = try await f.engine.report(hold, usage: [try UsageItem(meter: "tokens.out", quantity: 1000)], requestID: request("r1"))
        #expect(r1.allowed && r1.amount == Self.micros(10_000))
        try await f.engine.setPrice(meter, try Price(price: Self.micros(1), per: 1))
        let r2 = try await f.engine.report(hold, usage: [try UsageItem(meter: "tokens.out", quantity: 1000)], requestID: request("r2"))
        #expect(r2.allowed && r2.amount == Self.micros(1_000))
        #expect(try await f.engine.account(id).balance == money("99.989"))

        let settled = try await f.engine.settle(hold, usage: [], requestID: request("s"))  // final usage 0
        #expect(settled.allowed)
        #expect(settled.capturedOnHold == .zero)
        let state = try await f.engine.account(id)
        // Before the fix: 100.009 (the 2000 units refunded at the first price, 20,000).
        #expect(state.balance == money("100") && state.held == .zero)
        let refunds = try await f.allEntries(id).filter { $0.kind == .refund }
        #expect(refunds.map(\.amount) == [Self.micros(11_000)])
        #expect(try await f.engine.audit().isClean)
    }

    @Test("a partial settle after a price cut still refunds at most what was charged, and audit agrees")
    func partialSettleRefundBounded() async throws {
        let f = try await EngineFixture()
        let id = try await f.account("part", balance: "1")
        let meter = try PriceKey(meter: "tokens.in")
        try await f.engine.setPrice(meter, try Price(price: Self.micros(10), per: 1))
        let hold = try #require(try await f.engine.authorize(
            .account(id), usage: [try UsageItem(meter: "tokens.in", quantity: 100)],
            requestID: request("a"), mode: .hold(ttl: .seconds(60))).holdID)
        _ = try await f.engine.report(hold, usage: [try UsageItem(meter: "tokens.in", quantity: 100)], requestID: request("r1"))
        try await f.engine.setPrice(meter, try Price(price: Self.micros(1), per: 1))
        _ = try await f.engine.report(hold, usage: [try UsageItem(meter: "tokens.in", quantity: 900)], requestID: request("r2"))
        // Charged 1000 + 900 = 1900 for 1000 units; final usage 10: 990 units refunded at the
        // first price would be 9900, more than was paid: bounded to the 1900 charged.
        let settled = try await f.engine.settle(hold, usage: [try UsageItem(meter: "tokens.in", quantity: 10)], requestID: request("s"))
        #expect(settled.allowed && settled.capturedOnHold == .zero)
        #expect(try await f.engine.account(id).balance == money("1"))
        #expect(try await f.engine.audit().isClean)
    }

    @Test("audit flags a hold whose refunds for an item exceed what it charged for it")
    func auditFlagsOverRefund() throws {
        let account = try AccountID("x")
        let hold = HoldID(account: account, sequence: 7)
        func entry(_ kind: LedgerKind, _ amount: Int64, meter: String? = nil) -> LedgerEntry {
            LedgerEntry(id: "1-0", kind: kind, amount: Money(micros: amount)!, balance: .zero, held: .zero, heldDelta: .zero,
                        time: 0, requestID: "", holdID: hold, meter: meter, model: meter.map { _ in "" }, quantity: nil, keyID: nil)
        }
        var check = HoldRefundCheck()
        #expect(try check.add(entry(.hold, 0)) == nil)
        #expect(try check.add(entry(.capture, -10_000, meter: "tokens.out")) == nil)
        #expect(try check.add(entry(.capture, -1_000, meter: "tokens.out")) == nil)
        #expect(try check.add(entry(.refund, 20_000, meter: "tokens.out")) == nil)
        let problem = try check.add(entry(.release, 0))
        #expect(problem?.contains("hold 7 refunded more than it charged") == true)
        #expect(try check.finish().isEmpty)

        // Within the bound: no problem; a hold opened before what was read is not judged.
        var ok = HoldRefundCheck()
        _ = try ok.add(entry(.hold, 0))
        _ = try ok.add(entry(.capture, -11_000, meter: "tokens.out"))
        _ = try ok.add(entry(.refund, 11_000, meter: "tokens.out"))
        #expect(try ok.add(entry(.release, 0)) == nil)
        var unseen = HoldRefundCheck()
        _ = try unseen.add(entry(.refund, 5, meter: "tokens.out"))
        #expect(try unseen.add(entry(.release, 0)) == nil)
    }

    @Test("promotional credit expires on a credit-line account in debt")
    func grantExpiresInDebt() async throws {
        let f = try await EngineFixture()
        let id = try await f.account("debt", creditLimit: "100")
        let expiry = f.clock.nowMilliseconds() + 1000
        #expect(try await f.engine.debit(id, amount: money("50"), requestID: request("d")).allowed)
        #expect(try await f.engine.credit(id, amount: money("10"), kind: .grant, expires: expiry, requestID: request("g")).allowed)
        var state = try await f.engine.account(id)
        #expect(state.balance == money("-40") && state.promotional == money("10"))
        f.clock.advance(by: .seconds(2))
        state = try await f.engine.account(id)
        // Before the fix: still 10 of promotional credit, spendable forever.
        #expect(state.promotional == .zero && state.balance == money("-50"))
        let expiries = try await f.allEntries(id).filter { $0.kind == .expire }
        #expect(expiries.count == 1 && expiries.first?.amount == money("-10") && expiries.first?.time == expiry)
        #expect(try await f.engine.audit().isClean)
    }

    @Test("in debt, an open hold still holds back what it reserves from expiry, until it lets go")
    func grantExpiryInDebtRespectsHolds() async throws {
        let f = try await EngineFixture()
        let id = try await f.account("debthold", creditLimit: "100")
        let expiry = f.clock.nowMilliseconds() + 1000
        _ = try await f.engine.credit(id, amount: money("10"), kind: .grant, expires: expiry, requestID: request("g"))
        // Promotional credit is spent first: spend it, go into debt, then a new grant arrives.
        _ = try await f.engine.debit(id, amount: money("30"), requestID: request("d"))
        _ = try await f.engine.credit(id, amount: money("10"), kind: .grant, expires: expiry, requestID: request("g2"))
        var state = try await f.engine.account(id)
        #expect(state.balance == money("-10") && state.promotional == money("10"))
        let hold = try #require(try await f.engine.hold(id, amount: money("3"), ttl: .seconds(60), requestID: request("hold")).holdID)
        f.clock.advance(by: .seconds(2))
        state = try await f.engine.account(id)
        #expect(state.promotional == money("3") && state.balance == money("-17") && state.held == money("3"))
        _ = try await f.engine.capture(hold, amount: money("1"), requestID: request("cap"))
        _ = try await f.engine.release(hold, requestID: request("rel"))
        state = try await f.engine.account(id)
        #expect(state.promotional == .zero && state.balance == money("-20") && state.held == .zero)
        let expiries = try await f.allEntries(id).filter { $0.kind == .expire && $0.reference != nil }
        #expect(expiries.map(\.amount).sorted() == [money("-7"), money("-2")].sorted())
        #expect(try await f.engine.audit().isClean)
    }
}
