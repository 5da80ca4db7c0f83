import Foundation
import Testing
@testable import TollgateCore
import TollgateRedis

/// How many sequences of how many steps (TOLLGATE_MODEL_SEQUENCES, TOLLGATE_MODEL_OPS);
/// TOLLGATE_MODEL_SEED reruns one sequence, TOLLGATE_MODEL_BASE_SEED a whole run;
/// TOLLGATE_MODEL_HISTORY sets how many earlier steps a disagreement shows.
enum ModelAgreementSettings {
    static let environment = ProcessInfo.processInfo.environment
    static let pinnedSeed: UInt64? = environment["TOLLGATE_MODEL_SEED"].flatMap { UInt64($0) }
    static let operations = environment["TOLLGATE_MODEL_OPS"].flatMap { Int($0) } ?? 800
    static let sequenceCount = environment["TOLLGATE_MODEL_SEQUENCES"].flatMap { Int($0) } ?? 24
    static let verbose = environment["TOLLGATE_MODEL_VERBOSE"] != nil
    /// A fresh base every run (so runs cover new ground), printed so any run can be repeated.
    static let baseSeed: UInt64 = environment["TOLLGATE_MODEL_BASE_SEED"].flatMap { UInt64($0) }
        ?? UInt64.random(in: 1...UInt64(1) << 48)

    static var seeds: [UInt64] {
        if let pinnedSeed { return [pinnedSeed] }
        return (0..<UInt64(sequenceCount)).map { baseSeed &+ $0 }
    }
}

@Suite("ModelAgreement: the Lua engine against a pure-Swift reference model")
struct ModelAgreementTests {
    @Test("random sequences over accounts, keys, limits and a driven clock: every answer agrees")
    func randomSequences() async throws {
        let seeds = ModelAgreementSettings.seeds
        let operations = ModelAgreementSettings.operations
        let started = ContinuousClock.now
        print("ModelAgreement: \(seeds.count) sequences × \(operations) steps, seeds \(seeds.first!)…\(seeds.last!) "
              + "(repeat with TOLLGATE_MODEL_BASE_SEED=\(seeds.first!))")
        var coverage: [String: Int] = [:]
        var divergences: [Divergence] = []
        try await withThrowingTaskGroup(of: (Divergence?, [String: Int]).self) { group in
            var pending = seeds[...]
            // A few at a time: each has its own redis-server.
            for _ in 0..<4 {
                guard let seed = pending.popFirst() else { break }
                group.addTask { try await runAgreementSequence(seed: seed, operations: operations) }
            }
            while let (divergence, counts) = try await group.next() {
                coverage.merge(counts, uniquingKeysWith: +)
                if let divergence { divergences.append(divergence) }
                if let seed = pending.popFirst() {
                    group.addTask { try await runAgreementSequence(seed: seed, operations: operations) }
                }
            }
        }
        for divergence in divergences.sorted(by: { $0.seed < $1.seed }) {
            Issue.record("\(divergence)")
        }
        let steps = coverage.values.reduce(0, +)
        let table = coverage.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: "\n  ")
        print("ModelAgreement: \(steps) steps compared in \(ContinuousClock.now - started)"
              + (ModelAgreementSettings.verbose ? "; answers:\n  " + table : " (TOLLGATE_MODEL_VERBOSE=1 lists the answers)"))

        // The sequences must reach every kind of answer, or agreement proves little.
        guard ModelAgreementSettings.pinnedSeed == nil, seeds.count * operations >= 5_000 else { return }
        let expected: [(step: String, answer: String)] = [
            ("authorize by key debit", "allowed"), ("authorize by key hold", "allowed"),
            ("authorize by account debit", "allowed"), ("authorize by account hold", "allowed"),
            ("authorize by unknown key", "unknown_key"),
        ] + ["insufficient_credit", "rate_limited", "token_rate_limited", "concurrency_limited", "spend_cap_reached",
             "account_frozen", "key_revoked", "unknown_meter"].map { ("authorize", $0) } + [
            ("report", "allowed"), ("report", "hold_not_found"), ("report", "unknown_meter"),
            ("settle with usage", "allowed"), ("settle on reported", "allowed"), ("release", "allowed"),
            ("capture", "allowed"), ("hold", "allowed"), ("debit", "insufficient_credit"), ("debit", "account_frozen"),
            ("credit negative adjustment", "insufficient_credit"), ("replay", "(replayed)"),
            ("", "error idempotency_conflict"), ("(holds expired", ""), ("(clock crossed an hour", ""),
            ("(clock crossed a day", ""), ("(clock crossed a month", ""),
            // Promotional credit, the ledger, closed accounts, malformed usage.
            ("credit grant expiring", "allowed"), ("credit grant expiring", "expired"), ("credit grant", "allowed"),
            ("(promotional credit expired", ""), ("(ledger: expire of promotional credit", ""), ("(ledger: refund", ""),
            ("(ledger: capture", ""), ("(ledger: debit", ""), ("(ledger: grant", ""), ("(ledger: release", ""),
            ("(ledger: expire)", ""), ("(ledger: hold", ""),
            ("close", "done"), ("authorize", "account_closed"), ("credit", "account_closed"), ("debit", "account_closed"),
            ("set ", "error account_closed"), ("authorize", "error invalid_argument"),
        ]
        for (step, answer) in expected {
            let reached = coverage.contains { key, count in count > 0 && key.hasPrefix(step) && key.hasSuffix(answer) }
            #expect(reached, "no step '\(step)' answered '\(answer)' in \(seeds.count) sequences of \(operations) steps; answers:\n  \(table)")
        }
    }

    /// The comparison can fail: a model one micro-credit off, an engine whose balance moved
    /// behind the model's back, or a carry both start from (which only the ledger check sees).
    @Test("the harness notices a difference of one micro-credit", arguments: ["model price", "engine balance", "carry in both"])
    func harnessCatchesDrift(tampering: String) async throws {
        let (divergence, _) = try await runAgreementSequence(seed: 42, operations: 300, pricesChange: false) { harness in
            let id = try AccountID("acct-0")
            switch tampering {
            case "model price":
                harness.model.prices.prices["compute.seconds@gpu"]!.micros += 1
            case "engine balance":
                _ = try await harness.engine.credit(id, amount: Money(micros: 1)!, requestID: RequestID("behind-the-back"))
            default:
                // The same carry in both, on every account (so at least one charges the item):
                // they agree, but the ledger no longer adds up to the exact price of the usage.
                let name = "tokens.output@big"
                for account in harness.model.accounts.keys {
                    _ = try await harness.engine.redis.send(RedisCommand(["HSET", AccountKeys(account).account, "c:" + name, "998"]))
                    harness.model.accounts[account]!.carries.setRemainder(998, of: name)
                }
            }
        }
        let found = try #require(divergence)
        switch tampering {
        case "carry in both": #expect(found.step.hasPrefix("carries of ") && found.step.hasSuffix(" tokens.output@big"), "\(found)")
        default: #expect(!found.differences.isEmpty || found.step.hasPrefix("read"), "\(found)")
        }
    }
}

/// Cases found by the random sequences, kept as plain scenarios: each runs on both the engine
/// and the model (which must agree) and also checks the expected answer outright.
@Suite("ModelAgreement: directed cases")
struct ModelAgreementDirectedTests {
    /// An account "a" with 100 credits, api_call at 1 credit, the clock 1 s before an hour ends.
    private func world(limits: [LimitName: Int64?]) async throws -> (AgreementHarness, AccountID, ModelPeriods) {
        let start = ModelPeriods(milliseconds: 1_767_225_600_000 + 5 * 3_600_000).hourEnd - 1_000
        var harness = try await AgreementHarness(seed: 0, start: start)
        let id = try AccountID("a")
        try await harness.createAccount(id, creditLimit: 0)
        try await harness.setPrice(meter: "api_call", micros: 1_000_000, per: 1)
        _ = try await harness.run(.credit(id, amount: 100_000_000, .topup, expires: nil, RequestID("top")))
        _ = try await harness.run(.setLimits(id, key: nil, limits))
        return (harness, id, ModelPeriods(milliseconds: start))
    }

    private func calls(_ count: Int64) throws -> String {
        "api_call=\(count)"
    }

    @Test("a spend cap holds in an hour after a hold made in the hour before gives credit back",
          arguments: ["release", "expiry", "settle refund"])
    func capAcrossHours(giveBack: String) async throws {
        var (h, id, _) = try await world(limits: [.hourlyCap: 10_000_000])
        let hold = try #require(try await h.run(.authorize(.account(id), calls(10), RequestID("hold"), holdTTL: 3_000)).decision)
        #expect(hold.allowed && hold.holdSequence == 1)
        if giveBack == "settle refund" {
            _ = try await h.run(.report(id, hold: 1, try calls(10), RequestID("report")))
        }
        _ = try await h.run(.advance(milliseconds: 2_000))  // the next hour
        let first = try #require(try await h.run(.authorize(.account(id), calls(10), RequestID("d1"), holdTTL: nil)).decision)
        #expect(first.allowed)
        switch giveBack {
        case "release": _ = try await h.run(.release(id, hold: 1, RequestID("rel")))
        case "expiry": _ = try await h.run(.advance(milliseconds: 2_000))
        default: _ = try await h.run(.settle(id, hold: 1, "", RequestID("settle")))
        }
        // 10 credits were charged in this hour: the hourly cap of 10 is used up.
        let second = try #require(try await h.run(.authorize(.account(id), calls(10), RequestID("d2"), holdTTL: nil)).decision)
        #expect(!second.allowed && second.reason == .spendCapReached, "\(second)")
        try await h.finish()
    }

    @Test("retry_after_ms for a spend cap only when the call fits a fresh period")
    func capRetry() async throws {
        var (h, id, periods) = try await world(limits: [.hourlyCap: 5_000_000])
        let tooBig = try #require(try await h.run(.authorize(.account(id), calls(6), RequestID("six"), holdTTL: nil)).decision)
        #expect(!tooBig.allowed && tooBig.reason == .spendCapReached && tooBig.retryAfter == nil, "\(tooBig)")
        _ = try await h.run(.authorize(.account(id), calls(4), RequestID("four"), holdTTL: nil))
        let waits = try #require(try await h.run(.authorize(.account(id), calls(2), RequestID("two"), holdTTL: nil)).decision)
        #expect(!waits.allowed && waits.retryAfter == periods.hourEnd - h.model.now, "\(waits)")
        try await h.finish()
    }
}

extension ModelAgreementDirectedTests {
    @Test("a settle with 2^53 − 1 free tokens blocks the token rate instead of breaking the account")
    func hugeTokenSettle() async throws {
        var (h, id, _) = try await world(limits: [.tpm: 1_000])
        try await h.setPrice(meter: "tokens.input", micros: 0, per: 1)
        let tokens = { (count: Int64) in "tokens.input=\(count)" }
        let hold = try #require(try await h.run(.authorize(.account(id), tokens(10), RequestID("hold"), holdTTL: 60_000)).decision)
        #expect(hold.allowed)
        let settle = try #require(try await h.run(.settle(id, hold: 1, tokens(maximumExact), RequestID("settle"))).decision)
        #expect(settle.allowed)
        let next = try #require(try await h.run(.authorize(.account(id), tokens(1), RequestID("next"), holdTTL: nil)).decision)
        #expect(!next.allowed && next.reason == .tokenRateLimited && (next.retryAfter ?? 0) > 100 * 365 * 86_400_000, "\(next)")
        try await h.finish()
    }
}
