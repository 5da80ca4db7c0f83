import Foundation
import Testing
@testable import TollgateCore
import TollgateRedis
import TollgateTestSupport

@Suite("Billing: coupons, grants with expiry, deposits, history, usage, reports, archive")
struct BillingTests {
    private static let day: Int64 = 86_400_000

    @Test("100 concurrent redemptions of a code limited to 10 succeed exactly 10 times")
    func couponLimitUnderConcurrency() async throws {
        let f = try await EngineFixture(connections: 4)
        let batch = try await f.engine.createCoupons(
            amount: money("5"), count: 1, maxRedemptions: 10, expires: f.clock.nowMilliseconds() + Self.day)
        let code = try #require(batch.codes.first)
        var ids: [AccountID] = []
        for n in 0..<100 { ids.append(try await f.account("c\(n)")) }
        let results = try await withThrowingTaskGroup(of: CouponRedemption.self) { group in
            for id in ids { group.addTask { try await f.engine.redeemCoupon(id, code: code) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.filter(\.decision.allowed).count == 10)
        #expect(results.filter { $0.decision.reason == .exhausted }.count == 90)
        var credited = 0
        for id in ids where try await f.engine.account(id).promotional == money("5") { credited += 1 }
        #expect(credited == 10)
        #expect(try await f.engine.audit().isClean)
    }

    @Test("one account redeeming the same code 50 times concurrently succeeds once")
    func couponOncePerAccount() async throws {
        let f = try await EngineFixture(connections: 4)
        let batch = try await f.engine.createCoupons(
            amount: money("2"), count: 1, maxRedemptions: 1000, expires: f.clock.nowMilliseconds() + Self.day)
        let id = try await f.account("solo")
        let code = try #require(batch.codes.first)
        // Looser spellings of the same code match it.
        let spellings = [code, code.lowercased(), code.replacingOccurrences(of: "-", with: " ")]
        let policy = CouponGuessingPolicy(maxFailures: 1000, window: .seconds(60))
        let results = try await withThrowingTaskGroup(of: CouponRedemption.self) { group in
            for n in 0..<50 {
                group.addTask { try await f.engine.redeemCoupon(id, code: spellings[n % 3], policy: policy) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.filter(\.decision.allowed).count == 1)
        #expect(results.filter { $0.decision.reason == .alreadyRedeemed }.count == 49)
        let state = try await f.engine.account(id)
        #expect(state.balance == money("2") && state.promotional == money("2") && state.paid == .zero)
    }

    @Test("coupon refusals: invalid, expired, bound to another account; guessing is rate-limited per account and address")
    func couponRefusals() async throws {
        let f = try await EngineFixture()
        let now = f.clock.nowMilliseconds()
        let a = try await f.account("a")
        let b = try await f.account("b")
        let bound = try await f.engine.createCoupons(amount: money("1"), count: 1, expires: now + Self.day, account: a)
        let short = try await f.engine.createCoupons(amount: money("1"), count: 1, expires: now + 1000)
        let policy = CouponGuessingPolicy(maxFailures: 3, window: .seconds(60))
        #expect(try await f.engine.redeemCoupon(b, code: bound.codes[0], policy: policy).decision.reason == .invalidCoupon)
        f.clock.advance(by: .seconds(1))
        #expect(try await f.engine.redeemCoupon(a, code: short.codes[0], policy: policy).decision.reason == .expired)
        #expect(try await f.engine.redeemCoupon(b, code: "TG-NOPE-NOPE-NOPE", policy: policy).decision.reason == .invalidCoupon)
        #expect(try await f.engine.redeemCoupon(b, code: "TG-NOPE-NOPE-NOPX", policy: policy).decision.reason == .invalidCoupon)
        // b has failed 3 times: even a good code is refused until the window ends.
        let good = try await f.engine.createCoupons(amount: money("1"), count: 1, maxRedemptions: 5, expires: now + Self.day)
        let blocked = try await f.engine.redeemCoupon(b, code: good.codes[0], policy: policy)
        #expect(blocked.decision.reason == .tooManyAttempts && (blocked.decision.retryAfterMilliseconds ?? 0) > 0)
        f.clock.advance(by: .seconds(61))
        #expect(try await f.engine.redeemCoupon(b, code: good.codes[0], policy: policy).decision.allowed)
        // Per address: three accounts' failures from one address block the fourth account.
        let c = try await f.account("c")
        for (n, id) in [a, b, c].enumerated() {
            _ = try await f.engine.redeemCoupon(id, code: "TG-BAD\(n)", clientAddress: "10.0.0.9", policy: policy)
        }
        let d = try await f.account("d")
        #expect(try await f.engine.redeemCoupon(d, code: good.codes[0], clientAddress: "10.0.0.9", policy: policy).decision.reason == .tooManyAttempts)
        #expect(try await f.engine.redeemCoupon(d, code: good.codes[0], clientAddress: "10.0.0.10", policy: policy).decision.allowed)
        #expect(try await f.engine.audit().isClean)
    }

    @Test("grants expire exactly at their time; spending uses the soonest-expiring credit first, then paid")
    func grantExpiryAndOrder() async throws {
        let f = try await EngineFixture()
        let id = try await f.account("g", balance: "10")
        let now = f.clock.nowMilliseconds()
        _ = try await f.engine.credit(id, amount: money("3"), kind: .grant, expires: now + 2 * Self.day, requestID: request("late"))
        _ = try await f.engine.credit(id, amount: money("2"), kind: .grant, expires: now + Self.day, requestID: request("soon"))
        var state = try await f.engine.account(id)
        #expect(state.balance == money("15") && state.promotional == money("5") && state.paid == money("10"))
        // 2.5: all of the soon grant, then 0.5 of the late one; paid untouched.
        _ = try await f.engine.debit(id, amount: money("2.5"), requestID: request("d1"))
        state = try await f.engine.account(id)
        #expect(state.promotional == money("2.5") && state.paid == money("10"))
        f.clock.advance(by: .milliseconds(2 * Self.day - 1))
        #expect(try await f.engine.account(id).promotional == money("2.5"))
        f.clock.advance(by: .milliseconds(1))
        state = try await f.engine.account(id)
        #expect(state.promotional == .zero && state.balance == money("10") && state.paid == money("10"))
        let expiry = try #require(try await f.allEntries(id).first)
        #expect(expiry.kind == .expire && expiry.amount == money("-2.5") && expiry.time == now + 2 * Self.day)
        #expect(try await f.engine.audit().isClean)
    }

    @Test("credit an open hold reserves does not expire until the hold lets go (I1)")
    func grantExpiryRespectsHolds() async throws {
        let f = try await EngineFixture()
        let id = try await f.account("h")
        _ = try await f.engine.credit(id, amount: money("4"), kind: .grant, expires: f.clock.nowMilliseconds() + 1000, requestID: request("g"))
        let hold = try #require(try await f.engine.hold(id, amount: money("3"), ttl: .seconds(60), requestID: request("hold")).holdID)
        f.clock.advance(by: .seconds(2))
        var state = try await f.engine.account(id)
        #expect(state.balance == money("3") && state.available == .zero && state.promotional == money("3"))
        _ = try await f.engine.capture(hold, amount: money("1"), requestID: request("cap"))
        _ = try await f.engine.release(hold, requestID: request("rel"))
        state = try await f.engine.account(id)
        #expect(state.balance == .zero && state.promotional == .zero && state.available == .zero)
        #expect(try await f.engine.audit().isClean)
    }

    @Test("a deposit completed by 20 concurrent deliveries credits once; amount differences, second payments, failures and rejections")
    func deposits() async throws {
        let f = try await EngineFixture(connections: 4)
        // An account id far longer than a provider's order-id limit: deposit ids stay short.
        let id = try await f.account(String(repeating: "long-account-id-", count: 8))
        let deposit = try await f.engine.createDeposit(id, credits: money("50"), token: "USDT", tokenAmount: "50", provider: "moonpay",
                                                       network: "TRON", address: "TAddr1")
        #expect(deposit.status == .pending && deposit.id.rawValue.utf8.count == 28 && deposit.address == "TAddr1")
        let paid = DepositConfirmation.completed(credits: money("49.5"), received: "49.5 usdt_trx")
        let results = try await withThrowingTaskGroup(of: DepositSettlement.self) { group in
            for _ in 0..<20 {
                group.addTask { try await f.engine.settleDeposit(deposit.id, provider: "moonpay", providerTransactionID: "tx-1", confirmation: paid) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.filter { $0.outcome == .amountMismatch }.count == 1)
        #expect(results.filter { $0.outcome == .duplicate }.count == 19)
        #expect(try await f.engine.account(id).paid == money("49.5"))
        let done = try await f.engine.deposit(deposit.id)
        #expect(done.status == .completed && done.flagged && done.credited == money("49.5") && done.providerTransactionID == "tx-1")
        // A second real payment against the completed deposit is credited too, and flagged.
        let second = try await f.engine.settleDeposit(deposit.id, provider: "moonpay", providerTransactionID: "tx-2",
                                                      confirmation: .completed(credits: money("50"), received: "50"))
        #expect(second.outcome == .duplicatePayment && second.decision.balance == money("99.5"))
        #expect(try await f.engine.deposit(deposit.id).credited == money("99.5"))
        // The wrong provider, an unknown deposit: errors, nothing changes.
        await #expect(throws: TollgateError.self) {
            _ = try await f.engine.settleDeposit(deposit.id, provider: "alchemypay", providerTransactionID: "x", confirmation: paid)
        }
        await #expect(throws: TollgateError.self) {
            _ = try await f.engine.settleDeposit(.random(), provider: "moonpay", providerTransactionID: "x", confirmation: paid)
        }
        // A failure, then the same transaction completing after all: credited.
        f.clock.advance(by: .seconds(1))
        let failing = try await f.engine.createDeposit(id, credits: money("10"), token: "USDC", tokenAmount: "10", provider: "alchemypay",
                                                       network: "ETHEREUM", address: "0xAbC")
        #expect(try await f.engine.settleDeposit(failing.id, provider: "alchemypay", providerTransactionID: "ap-9", confirmation: .failed).outcome == .failed)
        #expect(try await f.engine.deposit(failing.id).status == .failed)
        let late = try await f.engine.settleDeposit(failing.id, provider: "alchemypay", providerTransactionID: "ap-9",
                                                    confirmation: .completed(credits: money("10"), received: "10"))
        #expect(late.outcome == .credited && late.decision.balance == money("109.5"))
        // Paid to another address: nothing credited, flagged.
        f.clock.advance(by: .seconds(1))
        let elsewhere = try await f.engine.createDeposit(id, credits: money("7"), token: "USDT", tokenAmount: "7", provider: "moonpay",
                                                         network: "TRON", address: "TAddr1")
        let rejected = try await f.engine.settleDeposit(elsewhere.id, provider: "moonpay", providerTransactionID: "tx-9",
                                                        confirmation: .rejected(reason: "wrong_destination"))
        #expect(rejected.outcome == .rejected && rejected.decision.balance == money("109.5"))
        let flagged = try await f.engine.deposit(elsewhere.id)
        #expect(flagged.status == .pending && flagged.flagged && flagged.rejection == "wrong_destination")
        #expect(try await f.engine.deposits(id).map(\.id) == [elsewhere.id, failing.id, deposit.id])
        // The payment history shows each deposit with its status, newest first.
        let history = try await f.engine.payments(id, kinds: [.deposit])
        #expect(history.entries.map { "\($0.reference ?? "")=\($0.status ?? "")" } == [
            "\(elsewhere.id)=rejected", "\(elsewhere.id)=pending",
            "\(failing.id)=completed", "\(failing.id)=failed", "\(failing.id)=pending",
            "\(deposit.id)=completed", "\(deposit.id)=completed", "\(deposit.id)=pending",
        ])
        #expect(try await f.engine.audit().isClean)
    }

    @Test("a refund gives promotional credit back as promotional credit, never as paid credit")
    func refundsKeepPromotionalCredit() async throws {
        let f = try await EngineFixture()
        let id = try await f.account("refund", balance: "1")
        let expiry = f.clock.nowMilliseconds() + Self.day
        _ = try await f.engine.credit(id, amount: money("10"), kind: .grant, expires: expiry, requestID: request("g"))
        try await f.engine.setPrice(try PriceKey(meter: "tokens.out"), try Price(price: money("1"), per: 1))
        let hold = try #require(try await f.engine.authorize(.account(id), usage: [try UsageItem(meter: "tokens.out", quantity: 2)],
                                                            requestID: request("a"), mode: .hold(ttl: .seconds(60))).holdID)
        _ = try await f.engine.report(hold, usage: [try UsageItem(meter: "tokens.out", quantity: 8)], requestID: request("r"))
        var state = try await f.engine.account(id)
        #expect(state.promotional == money("2") && state.paid == money("1"))
        _ = try await f.engine.settle(hold, usage: [try UsageItem(meter: "tokens.out", quantity: 1)], requestID: request("s"))
        state = try await f.engine.account(id)
        #expect(state.balance == money("10") && state.promotional == money("9") && state.paid == money("1"))
        f.clock.advance(by: .milliseconds(Self.day))
        state = try await f.engine.account(id)
        #expect(state.promotional == .zero && state.balance == money("1"))
        #expect(try await f.engine.audit().isClean)
    }

    @Test("payment history lists credits newest first, filtered by kind and time, paged")
    func paymentHistory() async throws {
        let f = try await EngineFixture()
        let id = try await f.account("p", balance: "10")
        let start = f.clock.nowMilliseconds()
        f.clock.advance(by: .seconds(10))
        _ = try await f.engine.credit(id, amount: money("1"), kind: .grant, requestID: request("g1"))
        _ = try await f.engine.debit(id, amount: money("2"), requestID: request("d1"))
        f.clock.advance(by: .seconds(10))
        _ = try await f.engine.credit(id, amount: money("-1"), kind: .adjustment, requestID: request("adj"))
        _ = try await f.engine.credit(id, amount: money("3"), requestID: request("t2"))
        let all = try await f.engine.payments(id)
        #expect(all.entries.map(\.kind) == [.topup, .adjustment, .grant, .topup])
        let grants = try await f.engine.payments(id, kinds: [.grant])
        #expect(grants.entries.map(\.requestID) == ["g1"])
        let window = try await f.engine.payments(id, from: start + 5000, to: start + 15_000)
        #expect(window.entries.map(\.requestID) == ["g1"])
        let first = try await f.engine.payments(id, limit: 2)
        #expect(first.entries.count == 2 && first.nextCursor != nil)
        let second = try await f.engine.payments(id, limit: 2, cursor: first.nextCursor)
        #expect(second.entries.map(\.kind) == [.grant, .topup])
        await #expect(throws: TollgateError.self) { _ = try await f.engine.payments(id, kinds: [.debit]) }
    }

    @Test("usage breakdown by meter, model, key and period equals the ledger's usage charges")
    func usageBreakdown() async throws {
        let f = try await EngineFixture()
        let id = try await f.account("u", balance: "100")
        try await f.engine.setPrice(try PriceKey(meter: "tokens.in", model: "m1"), try Price(price: money("1"), per: 1000))
        try await f.engine.setPrice(try PriceKey(meter: "calls"), try Price(price: money("0.01"), per: 1))
        let from = f.clock.nowMilliseconds()
        for n in 0..<30 {
            let usage = [try UsageItem(meter: "tokens.in", model: "m1", quantity: 500), try UsageItem(meter: "calls", quantity: 1)]
            _ = try await f.engine.authorize(.account(id), usage: usage, requestID: request("a\(n)"))
            f.clock.advance(by: .seconds(3 * 3600))  // 30 calls over 3.75 days
        }
        _ = try await f.engine.debit(id, amount: money("0.5"), requestID: request("plain"))
        let to = f.clock.nowMilliseconds() + 1
        let byMeter = try await f.engine.usage(id, from: from, to: to, by: UsageGrouping(dimensions: [.meter]))
        #expect(byMeter.groups.map(\.meter) == ["", "calls", "tokens.in"])
        #expect(byMeter.groups.first { $0.meter == "tokens.in" }?.amount == money("15"))
        #expect(byMeter.groups.first { $0.meter == "tokens.in" }?.quantity == 15_000)
        #expect(byMeter.totalAmount == money("15.8"))
        let byDay = try await f.engine.usage(id, from: from, to: to, by: try UsageGrouping(parsing: "meter,model,day"))
        #expect(byDay.groups.reduce(Int64(0)) { $0 + $1.amount.micros } == byMeter.totalAmount.micros)
        #expect(Set(byDay.groups.compactMap(\.period)).count >= 4)
        let byHour = try await f.engine.usage(id, from: from, to: to, by: try UsageGrouping(parsing: "hour"))
        #expect(byHour.totalAmount == byMeter.totalAmount && byHour.groups.count == 31)
        // The ledger agrees.
        let entries = try await f.allEntries(id)
        let charged = entries.filter { [.debit, .capture, .refund].contains($0.kind) }.reduce(Int64(0)) { $0 - $1.amount.micros }
        #expect(charged == byMeter.totalAmount.micros)
        #expect(throws: TollgateError.self) { _ = try UsageGrouping(parsing: "meter,day,hour") }
    }

    @Test("randomized: top-ups, coupons, grants, expiries and debits; the report reconciles and usage equals the ledger's debits")
    func randomizedReconciliation() async throws {
        let f = try await EngineFixture()
        var generator = SplitMix64(seed: TestSeed.draw("TOLLGATE_BILLING_SEED", for: "billing reconciliation"))
        try await f.engine.setPrice(try PriceKey(meter: "calls"), try Price(price: money("0.013"), per: 1))
        let ids = [try await f.account("r1"), try await f.account("r2")]
        let start = f.clock.nowMilliseconds()
        let coupons = try await f.engine.createCoupons(amount: money("0.7"), count: 20, maxRedemptions: 2, expires: start + 30 * Self.day,
                                                       creditExpires: start + 3 * Self.day)
        // Every step is checked as it happens: its own ledger entries (due expiries aside) and
        // the balance's move against what was asked and what the reply says.
        var books = LedgerWatch(engine: f.engine)
        for id in ids {
            // Empty accounts: a debit is refused and writes nothing.
            let refused = try await f.engine.debit(id, amount: money("0.01"), requestID: request("first-\(id)"))
            #expect(!refused.allowed && refused.reason == .insufficientCredit)
            try await books.mark(id)
        }
        var problems: [String] = []
        var outcomes: [String: Int] = [:]
        for step in 0..<400 {
            let id = ids[Int.random(in: 0..<ids.count, using: &generator)]
            let decision: Decision?
            let expected: (kind: LedgerKind, amount: Int64)?
            switch Int.random(in: 0..<10, using: &generator) {
            case 0:
                decision = try await f.engine.credit(id, amount: money("1.5"), requestID: request("t\(step)"))
                expected = (.topup, 1_500_000)
            case 1:
                decision = try await f.engine.redeemCoupon(id, code: coupons.codes[Int.random(in: 0..<20, using: &generator)],
                                                           policy: CouponGuessingPolicy(maxFailures: 10_000)).decision
                expected = (.coupon, 700_000)
            case 2:
                decision = try await f.engine.credit(id, amount: money("0.9"), kind: .grant,
                                                     expires: f.clock.nowMilliseconds() + Int64.random(in: 1...Self.day, using: &generator),
                                                     requestID: request("g\(step)"))
                expected = (.grant, 900_000)
            case 3:
                f.clock.advance(by: .milliseconds(Int64.random(in: 1...(6 * 3_600_000), using: &generator)))
                decision = nil
                expected = nil
            case 4:
                decision = try await f.engine.debit(id, amount: money("0.31"), requestID: request("d\(step)"))
                expected = (.debit, -310_000)
            default:
                let quantity = Int64.random(in: 1...40, using: &generator)
                decision = try await f.engine.authorize(.account(id), usage: [try UsageItem(meter: "calls", quantity: quantity)],
                                                        requestID: request("a\(step)"))
                expected = (.debit, -13_000 * quantity)
            }
            for other in ids where other != id || decision == nil {
                problems += try await books.check(other, after: "step \(step)").problems
            }
            guard let decision, let expected else { continue }
            let effect = try await books.check(id, after: "step \(step) (\(expected.kind))")
            problems += effect.problems
            let own = effect.entries.filter { $0.kind != .expire }
            outcomes["\(expected.kind) \(decision.allowed ? "allowed" : decision.reason?.rawValue ?? "?")", default: 0] += 1
            if decision.allowed {
                if own.map(\.kind) != [expected.kind] || own.first?.amount.micros != expected.amount {
                    problems.append("step \(step): expected one \(expected.kind) of \(expected.amount), wrote \(own.map { "\($0.kind) \($0.amount)" })")
                }
            } else {
                if !own.isEmpty { problems.append("step \(step): a refusal (\(String(describing: decision.reason))) wrote \(own.map(\.kind))") }
                // A debit is refused only when the account cannot cover it; a coupon only for the coupon's own reasons.
                switch expected.kind {
                case .debit:
                    if decision.reason != .insufficientCredit || (decision.available?.micros ?? 0) >= -expected.amount {
                        problems.append("step \(step): a debit of \(-expected.amount) refused (\(String(describing: decision.reason))) with \(String(describing: decision.available)) available")
                    }
                case .coupon:
                    // Its credit would expire at once three days in (creditExpires).
                    let expired = f.clock.nowMilliseconds() >= start + 3 * Self.day
                    if ![DenialReason.exhausted, .alreadyRedeemed].contains(decision.reason), !(expired && decision.reason == .expired) {
                        problems.append("step \(step): a coupon refused as \(String(describing: decision.reason))")
                    }
                default:
                    problems.append("step \(step): a \(expected.kind) refused (\(String(describing: decision.reason)))")
                }
            }
            if let balance = decision.balance, balance.micros != effect.after.balance {
                problems.append("step \(step): the reply says balance \(balance), the account holds \(effect.after.balance) micro-credits")
            }
        }
        #expect(problems.isEmpty, "\(problems.prefix(10).joined(separator: "\n"))")
        // The sequence reached both sides of every decision.
        print("FIGURE billing reconciliation outcomes: \(outcomes.sorted { $0.key < $1.key })")
        // (Refusals of debits depend on the draw; the accounts' first debits below make sure.)
        for outcome in ["topup allowed", "coupon allowed", "grant allowed", "debit allowed"] {
            #expect(outcomes[outcome, default: 0] > 0, "no '\(outcome)' in \(outcomes)")
        }
        f.clock.advance(by: .milliseconds(4 * Self.day))  // every grant due
        let end = f.clock.nowMilliseconds() + 1
        for id in ids {
            _ = try await f.engine.account(id)
            // Any cut of the history reconciles on both sides.
            let middle = start + (end - start) / 3
            for (from, to) in [(start, end), (start, middle), (middle, end)] {
                let report = try await f.engine.transactionReport(id, from: from, to: to)
                var totals = TransactionReport.Totals(opening: report.openingBalance)
                var usageCharges: Int64 = 0
                try await f.engine.forEachLedgerPage(of: report, pageSize: 37) { page in
                    for entry in page {
                        try totals.add(entry)
                        if [.debit, .capture, .refund].contains(entry.kind) { usageCharges -= entry.amount.micros }
                    }
                }
                #expect(totals.reconciles(opening: report.openingBalance))
                if to == end { #expect(totals.closing == (try await f.engine.account(id)).balance.micros) }
                if from == start && to == end {
                    let usage = try await f.engine.usage(id, from: from, to: to, by: UsageGrouping(dimensions: []))
                    #expect(usage.totalAmount.micros == usageCharges)
                }
            }
            #expect(try await f.engine.account(id).promotional == .zero)
        }
        #expect(try await f.engine.audit().isClean)
    }

    @Test("archiving moves old entries to a file and out of Redis; the audit still balances and reports refuse the archived range")
    func archive() async throws {
        let f = try await EngineFixture()
        let id = try await f.account("arc", balance: "10")
        for n in 0..<2500 {
            _ = try await f.engine.debit(id, amount: money("0.001"), requestID: request("d\(n)"))
            if n == 1999 { f.clock.advance(by: .seconds(10)) }
        }
        let cut = f.clock.nowMilliseconds()
        f.clock.advance(by: .seconds(10))
        _ = try await f.engine.credit(id, amount: money("1"), requestID: request("after"))
        var archived: [LedgerEntry] = []
        let result = try await f.engine.archiveLedger(id, before: cut) { page in archived += page }
        #expect(result.entries == 2001 && archived.count == 2001 && archived.first?.kind == .topup)
        let remaining = try await f.allEntries(id)
        #expect(remaining.count == 501)
        let audit = try await f.engine.audit(id)
        #expect(audit.isClean && audit.balance == money("8.5"))
        await #expect(throws: TollgateError.self) { _ = try await f.engine.transactionReport(id, from: 0, to: cut + 20_000) }
        let report = try await f.engine.transactionReport(id, from: cut, to: cut + 20_000)
        #expect(report.openingBalance == money("8"))
        // Archiving again finds nothing more before the cut.
        #expect(try await f.engine.archiveLedger(id, before: cut) { _ in }.entries == 0)
    }

    @Test("a flood of deposits (the daily cap's 100) at one instant keeps ledger and payment ids on the clock, in order")
    func depositFloodKeepsIdsOnTheClock() async throws {
        let f = try await EngineFixture()
        let id = try await f.account("flood", balance: "5")
        let now = f.clock.nowMilliseconds()
        for _ in 0..<100 {
            _ = try await f.engine.createDeposit(id, credits: money("1"), token: "USDT", tokenAmount: "1", provider: "moonpay",
                                                 network: "TRON", address: "TAddr1")
        }
        let debit = try await f.engine.debit(id, amount: money("1"), requestID: request("after-flood"))
        // Each deposit used to push the account's ids 1 ms ahead: this debit was filed 100 ms late.
        let entryMs = Int64(try #require(debit.entryID?.split(separator: "-").first.flatMap { Int64($0) }))
        #expect(entryMs == now, "the debit's entry \(debit.entryID ?? "") is not at the clock's \(now)")
        let history = try await f.engine.payments(id, limit: 1000)
        let ids = history.entries.map(\.id)
        #expect(ids.count == 101, "\(ids.count) payment entries")
        let keys = ids.map { id -> [Int64] in id.split(separator: "-").map { Int64($0)! } }
        #expect(keys.allSatisfy { $0[0] == now }, "every entry at the clock's ms")
        #expect(Set(ids).count == ids.count)
        // An older library (a rolling upgrade) moves 'lms' alone, after writing an entry of
        // its own at a later sequence: the sequence is then unknown, and the next id moves on
        // to the next ms instead of colliding.
        _ = try await f.engine.redis.send("XADD", AccountKeys(id).ledger, "\(now)-500", "kind", "old")
        _ = try await f.engine.redis.send("HSET", AccountKeys(id).account, "lms", String(now))
        _ = try await f.engine.redis.send("HINCRBY", AccountKeys(id).account, "lseqms", "-1")
        let afterOld = try await f.engine.debit(id, amount: money("1"), requestID: request("after-old"))
        #expect(afterOld.entryID == "\(now + 1)-0", "\(afterOld.entryID ?? "")")
        _ = try await f.engine.redis.send("XDEL", AccountKeys(id).ledger, "\(now)-500")
        // The clock moves on: the next entry is at the new time, sequence 0.
        f.clock.advance(by: .milliseconds(5))
        let later = try await f.engine.debit(id, amount: money("1"), requestID: request("later"))
        #expect(later.entryID == "\(now + 5)-0")
        #expect(try await f.engine.audit().isClean)
    }

    @Test("aggregates whose sum leaves Int64 give amount_out_of_range, never a crash")
    func usageSumsAreOverflowSafe() async throws {
        let f = try await EngineFixture()
        let id = try await f.account("huge")
        // Two whole months whose stored quantities (each a valid Int64) add up beyond Int64.
        let from = Engine.monthStart(SpendPeriods(milliseconds: f.clock.nowMilliseconds()).month - 3)
        let to = Engine.monthStart(SpendPeriods(milliseconds: f.clock.nowMilliseconds()).month - 1)
        let buckets = try Engine.usageBuckets(from: from, to: to, finest: nil)
        try #require(buckets.count == 2 && buckets.allSatisfy { $0.granularity == "m" })
        for bucket in buckets {
            _ = try await f.engine.redis.send("HSET", AccountKeys(id).usage("m", bucket.period), "q|api_call||", String(Int64.max / 2 + 1))
        }
        do {
            _ = try await f.engine.usage(id, from: from, to: to, by: UsageGrouping(dimensions: [.meter]))
            Issue.record("the sum beyond Int64 was not refused")
        } catch {
            #expect(error.code == .amountOutOfRange, "\(error)")
        }
        // One of them alone still reads.
        let one = try await f.engine.usage(id, from: from, to: Engine.monthStart(SpendPeriods(milliseconds: from).month + 1),
                                           by: UsageGrouping(dimensions: [.meter]))
        #expect(one.totalQuantity == Int64.max / 2 + 1)
    }
}
