import Testing
import TollgateCore
import TollgateRedis

@Suite("Engine: holds (I4) with an injected clock (I6)")
struct EngineHoldTests {
    @Test("reserve, capture per batch, release the rest")
    func captureAndRelease() async throws {
        let f = try await EngineFixture()
        let id = try await f.account("a", balance: "10")
        let hold = try await f.engine.hold(id, amount: money("4"), ttl: .seconds(30), requestID: request("h"))
        let holdID = try #require(hold.holdID)
        #expect(hold.allowed && hold.account?.held == money("4") && hold.available == money("6") && hold.balance == money("10"))
        #expect(hold.holdExpiresAt == f.clock.nowMilliseconds() + 30_000)
        for batch in 0..<3 {
            let capture = try await f.engine.capture(holdID, amount: money("0.5"), requestID: request("b\(batch)"))
            #expect(capture.allowed)
        }
        let state = try await f.engine.account(id)
        #expect(state.balance == money("8.5") && state.held == money("2.5") && state.available == money("6"))
        let release = try await f.engine.release(holdID, requestID: request("rel"))
        #expect(release.allowed && release.amount == money("2.5") && release.capturedOnHold == money("1.5"))
        #expect(release.account?.held == .zero && release.balance == money("8.5"))
        let again = try await f.engine.release(holdID, requestID: request("rel-2"))
        #expect(!again.allowed && again.reason == .holdNotFound)
        let late = try await f.engine.capture(holdID, amount: money("0.1"), requestID: request("late"))
        #expect(!late.allowed && late.reason == .holdNotFound)
        #expect(try await f.allEntries(id).map(\.kind) == [.release, .capture, .capture, .capture, .hold, .topup])
        #expect(try await f.engine.audit().isClean)
    }

    @Test("a capture beyond the hold draws on available credit, or is refused and changes nothing")
    func captureBeyondHold() async throws {
        let f = try await EngineFixture()
        let id = try await f.account("a", balance: "5")
        let holdID = try #require(try await f.engine.hold(id, amount: money("2"), ttl: .seconds(30), requestID: request("h")).holdID)
        // 2 from the hold + 2 from available (3 available).
        let over = try await f.engine.capture(holdID, amount: money("4"), requestID: request("c1"))
        #expect(over.allowed && over.balance == money("1") && over.account?.held == .zero && over.available == money("1"))
        let refused = try await f.engine.capture(holdID, amount: money("1.000001"), requestID: request("c2"))
        #expect(!refused.allowed && refused.reason == .insufficientCredit)
        #expect(refused.balance == money("1"))
        let fits = try await f.engine.capture(holdID, amount: money("1"), requestID: request("c3"))
        #expect(fits.allowed && fits.balance == .zero && fits.capturedOnHold == money("5"))
        #expect(try await f.engine.audit().isClean)
    }

    @Test("a hold expires by itself exactly at its TTL and frees what it reserves")
    func expiry() async throws {
        let f = try await EngineFixture()
        let id = try await f.account("a", balance: "10")
        let holdID = try #require(try await f.engine.hold(id, amount: money("3"), ttl: .seconds(30), requestID: request("h")).holdID)
        _ = try await f.engine.capture(holdID, amount: money("1"), requestID: request("c"))
        f.clock.advance(by: .milliseconds(29_999))
        #expect(try await f.engine.account(id).held == money("2"))
        f.clock.advance(by: .milliseconds(1))
        let after = try await f.engine.account(id)
        #expect(after.held == .zero && after.balance == money("9") && after.available == money("9"))
        let entries = try await f.allEntries(id)
        #expect(entries.first?.kind == .expire && entries.first?.heldDelta == money("-2") && entries.first?.requestID == "h")
        #expect(entries.first?.time == f.clock.nowMilliseconds())
        let capture = try await f.engine.capture(holdID, amount: money("1"), requestID: request("c-late"))
        #expect(!capture.allowed && capture.reason == .holdNotFound)
        #expect(try await f.engine.audit().isClean)
    }

    @Test("an expired hold's credit is available to the very call that finds it expired")
    func expiryFreesCreditForTheNextCall() async throws {
        let f = try await EngineFixture()
        let id = try await f.account("a", balance: "5")
        _ = try await f.engine.hold(id, amount: money("5"), ttl: .seconds(1), requestID: request("h"))
        #expect(try await !f.engine.debit(id, amount: money("1"), requestID: request("d1")).allowed)
        f.clock.advance(by: .seconds(1))
        let debit = try await f.engine.debit(id, amount: money("5"), requestID: request("d2"))
        #expect(debit.allowed && debit.balance == .zero && debit.account?.held == .zero)
    }

    @Test("a hold the account cannot cover is refused and changes nothing")
    func holdRefused() async throws {
        let f = try await EngineFixture()
        let id = try await f.account("a", balance: "1")
        let refused = try await f.engine.hold(id, amount: money("1.000001"), ttl: .seconds(5), requestID: request("h"))
        #expect(!refused.allowed && refused.reason == .insufficientCredit && refused.holdID == nil)
        #expect(try await f.engine.account(id).held == .zero)
        #expect(try await f.allEntries(id).count == 1)
        await #expect(throws: TollgateError.self) {
            try await f.engine.hold(id, amount: money("1"), ttl: .zero, requestID: request("h0"))
        }
        await #expect(throws: TollgateError.self) {
            try await f.engine.hold(id, amount: money("1"), ttl: .seconds(8 * 24 * 3600), requestID: request("h8d"))
        }
    }

    @Test("many holds on one account expire together, each with its own ledger entry")
    func manyExpire() async throws {
        let f = try await EngineFixture()
        let id = try await f.account("a", balance: "100")
        for index in 0..<20 {
            _ = try await f.engine.hold(id, amount: money("1"), ttl: .milliseconds(100 + index), requestID: request("h\(index)"))
        }
        #expect(try await f.engine.account(id).held == money("20"))
        f.clock.advance(by: .milliseconds(110))
        #expect(try await f.engine.account(id).held == money("9"))
        f.clock.advance(by: .seconds(1))
        #expect(try await f.engine.account(id).held == .zero)
        #expect(try await f.allEntries(id).filter { $0.kind == .expire }.count == 20)
        #expect(try await f.engine.audit().isClean)
    }
}
