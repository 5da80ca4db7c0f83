import Foundation
import Testing
@testable import TollgateCore
import TollgateRedis
import TollgateTestSupport

/// `void` (lua/65_void.lua): a decision answered 503 never counts, whichever of it and its void
/// reaches Redis first.
@Suite("void: decisions answered 503 are never charged")
struct VoidTests {
    static let api = [try! UsageItem(meter: "api_call", quantity: 3), try! UsageItem(meter: "tokens.input", model: "m", quantity: 1000)]

    func fixture() async throws -> (EngineFixture, AccountID) {
        let f = try await EngineFixture()
        try await f.engine.setPrice(try PriceKey(parsing: "api_call"), try Price(parsing: "0.01", per: 1))
        try await f.engine.setPrice(try PriceKey(parsing: "tokens.input@m"), try Price(parsing: "1", per: 1000))
        let id = try await f.account("v", balance: "10")
        return (f, id)
    }

    @Test("an authorize that applied is given back with void entries, usage aggregates too; the late retry is refused")
    func voidAfterOriginal() async throws {
        let (f, id) = try await fixture()
        let decision = try await f.engine.authorize(.account(id), usage: Self.api, requestID: request("r1"))
        #expect(decision.allowed && decision.account?.balance == money("8.97"))
        let voided = try await f.engine.void(id, requestID: request("r1"))
        #expect(voided.allowed && voided.amount == money("1.03") && voided.account?.balance == money("10"))
        let entries = try await f.allEntries(id)
        #expect(entries.filter { $0.kind == .void }.count == 2)
        #expect(entries.filter { $0.kind == .void }.allSatisfy { $0.requestID == "r1" && $0.amount.isPositive })
        // The usage aggregates: nothing left of the call.
        let now = f.clock.nowMilliseconds()
        let usage = try await f.engine.usage(id, from: now - 3_600_000, to: now + 3_600_000, by: UsageGrouping(dimensions: [.meter]))
        #expect(usage.totalAmount == .zero && usage.totalQuantity == 0, "\(usage)")
        // Voiding again replays; the original again is refused.
        #expect(try await f.engine.void(id, requestID: request("r1")).replayed)
        await #expect(throws: TollgateError.self) { try await f.engine.authorize(.account(id), usage: Self.api, requestID: request("r1")) }
        #expect(try await f.engine.account(id).balance == money("10"))
        #expect(try await f.engine.audit().isClean)
        f.redis.single?.stop()
    }

    @Test("a void that comes first spends the id: the original, arriving late, changes nothing")
    func voidBeforeOriginal() async throws {
        let (f, id) = try await fixture()
        let voided = try await f.engine.void(id, requestID: request("r2"))
        #expect(voided.allowed && voided.amount == .zero)
        do {
            _ = try await f.engine.authorize(.account(id), usage: Self.api, requestID: request("r2"))
            Issue.record("a voided request id was accepted")
        } catch {
            #expect(error.code == .idempotencyConflict)
        }
        #expect(try await f.engine.account(id).balance == money("10"))
        #expect(try await f.allEntries(id).count == 1)
        f.redis.single?.stop()
    }

    @Test("promotional credit a voided debit used comes back as promotional credit; a voided hold is released")
    func promotionalAndHolds() async throws {
        let (f, id) = try await fixture()
        _ = try await f.engine.credit(id, amount: money("0.5"), kind: .grant, expires: f.clock.nowMilliseconds() + 86_400_000, requestID: request("g"))
        _ = try await f.engine.authorize(.account(id), usage: Self.api, requestID: request("r3"))
        #expect(try await f.engine.account(id).promotional == .zero)
        _ = try await f.engine.void(id, requestID: request("r3"))
        let account = try await f.engine.account(id)
        #expect(account.balance == money("10.5") && account.promotional == money("0.5"), "\(account)")

        let hold = try await f.engine.authorize(.account(id), usage: Self.api, requestID: request("h1"), mode: .hold(ttl: .seconds(60)))
        #expect(try await f.engine.account(id).held == money("1.03"))
        let released = try await f.engine.void(id, requestID: request("h1"))
        #expect(released.holdID == hold.holdID)
        let after = try await f.engine.account(id)
        #expect(after.held == .zero && after.balance == money("10.5"))
        _ = try await f.engine.hold(id, amount: money("1"), ttl: .seconds(60), requestID: request("h2"))
        _ = try await f.engine.void(id, requestID: request("h2"))
        #expect(try await f.engine.account(id).held == .zero)
        #expect(try await f.engine.audit().isClean)
        f.redis.single?.stop()
    }

    @Test("a journal debit and its authorize charge once, in either order")
    func journalDebitOnce() async throws {
        let (f, id) = try await fixture()
        _ = try await f.engine.journalDebit(id, keyID: "", usage: Self.api, requestID: request("j1"))
        #expect(try await f.engine.authorize(.account(id), usage: Self.api, requestID: request("j1")).replayed)
        _ = try await f.engine.authorize(.account(id), usage: Self.api, requestID: request("j2"))
        #expect(try await f.engine.journalDebit(id, keyID: "", usage: Self.api, requestID: request("j2")).replayed)
        #expect(try await f.engine.account(id).balance == money("7.94"))
        // No limit or balance refuses a replay: the call was served.
        _ = try await f.engine.debit(id, amount: money("7.94"), requestID: request("drain"))
        #expect(try await f.engine.journalDebit(id, keyID: "", usage: Self.api, requestID: request("j3")).allowed)
        #expect(try await f.engine.account(id).balance == money("-1.03"))
        #expect(try await f.engine.audit().isClean)
        f.redis.single?.stop()
    }

    @Test("an engine whose reply times out queues the void and applies it once Redis answers",
          .enabled(if: !TestRedis.isCluster, "pauses the one Redis"))
    func timeoutQueuesVoid() async throws {
        let (f, id) = try await fixture()
        let slow = Engine(redis: f.server.client(connections: 1, commandTimeout: .milliseconds(50)), clock: f.clock)
        // A plain debit needs no price book: the call goes straight to Redis (one FCALL).
        f.server.signal(SIGSTOP)
        await #expect(throws: TollgateError.self) { try await slow.debit(id, amount: money("1"), requestID: request("t1")) }
        #expect(slow.pendingVoids.waiting == 1)
        f.server.signal(SIGCONT)
        let deadline = ContinuousClock.now + .seconds(20)
        while slow.pendingVoids.waiting > 0, ContinuousClock.now < deadline {
            await slow.retryPendingVoids()
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(slow.pendingVoids.waiting == 0)
        #expect(try await f.engine.account(id).balance == money("10"))
        #expect(try await f.engine.audit().isClean)
        slow.redis.close()
        f.redis.single?.stop()
    }
}
