import Foundation
import Synchronization
import TollgateCore

/// An account the run made, with its API key.
struct PlannedAccount: Sendable {
    let id: AccountID
    let key: String
}

/// The accounts, keys and prices a run set up, shared read-only by the workers.
final class RunPlan: Sendable {
    /// The meter one call charges.
    static let callMeter = "loadtest.call"
    /// What the set-up prices one call at (per 1 call): 1 micro-credit.
    static let callPrice = Money(micros: 1)!
    /// The meter streamed tokens charge.
    static let tokenMeter = "tokens.loadtest"
    /// What the set-up prices one token at (per 1 token): 2 micro-credits.
    static let tokenPrice = Money(micros: 2)!
    /// Tokens per reported batch.
    static let tokensPerBatch: Int64 = 100
    /// Credit each traffic account starts with.
    static let startingCredit = Money(micros: 1_000 * Money.microsPerCredit)!
    /// What one operator top-up of the `mixed` workload adds: 1 credit.
    static let topUpAmount = Money(micros: Money.microsPerCredit)!
    /// What one coupon of the `mixed` workload is worth: 0.5 credit.
    static let couponAmount = Money(micros: 500_000)!

    // What each allowed call must cost, computed from the prices the plan set (never taken
    // from the target's answer: the books check compares the answers with these).

    /// One call (`api_call` of 1 unit at `callPrice`), in micro-credits.
    static var callCost: Int64 { callPrice.micros }
    /// One token-batch report, in micro-credits.
    static var reportCost: Int64 { tokenPrice.micros * tokensPerBatch }

    let configuration: LoadTestConfiguration
    /// The accounts calls and streams spread over.
    let accounts: [PlannedAccount]
    /// Mixed only: an account whose key allows 1 request per second (refusals: `rate_limited`).
    let limited: PlannedAccount?
    /// Mixed only: an account without credit (refusals: `insufficient_credit`).
    let broke: PlannedAccount?
    /// Mixed only: single-use coupon codes, when the target has coupons.
    let coupons: [String]
    /// The next coupon to redeem.
    let nextCoupon = Atomic<Int>(0)
    /// Zipf: the cumulative probability of accounts 0...i.
    private let cumulative: [Double]

    init(configuration: LoadTestConfiguration, accounts: [PlannedAccount], limited: PlannedAccount?, broke: PlannedAccount?, coupons: [String]) {
        self.configuration = configuration
        self.accounts = accounts
        self.limited = limited
        self.broke = broke
        self.coupons = coupons
        if case .zipf(let exponent) = configuration.skew, accounts.count > 1 {
            var total = 0.0
            var running: [Double] = []
            running.reserveCapacity(accounts.count)
            for rank in 1...accounts.count {
                total += 1 / pow(Double(rank), exponent)
                running.append(total)
            }
            cumulative = running.map { $0 / total }
        } else {
            cumulative = []
        }
    }

    /// The account for the next call.
    func pick(_ random: inout SplitMix64) -> PlannedAccount {
        guard accounts.count > 1 else { return accounts[0] }
        guard !cumulative.isEmpty else { return accounts[Int(random.next() % UInt64(accounts.count))] }
        let u = random.unit()
        var low = 0, high = cumulative.count - 1
        while low < high {
            let middle = (low + high) / 2
            if cumulative[middle] < u { low = middle + 1 } else { high = middle }
        }
        return accounts[low]
    }

    /// A coupon code nobody has redeemed yet, if any are left.
    func takeCoupon() -> String? {
        let index = nextCoupon.wrappingAdd(1, ordering: .relaxed).oldValue
        return index < coupons.count ? coupons[index] : nil
    }

    static func id(_ text: String) throws(LoadTestError) -> AccountID {
        do { return try AccountID(text) } catch { throw LoadTestError(.invalidConfiguration, error.message) }
    }
}

/// A small, fast pseudo-random generator, one per worker.
struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}
