import TollgateCore
import TollgateRedis
import TollgateTestSupport

/// A real redis-server (or, with `TOLLGATE_TEST_REDIS=cluster`, a local Redis Cluster), an
/// engine on it with a clock the test drives, and helpers.
struct EngineFixture {
    let redis: TestRedis
    let engine: Engine
    let clock: ManualEngineClock

    /// The single server; tests that restart or stop it run only in single mode.
    var server: RedisServer {
        guard let single = redis.single else { preconditionFailure("this test needs a single Redis (it is skipped on a cluster)") }
        return single
    }

    /// The coupon secret of every fixture's engine.
    static let couponKey = try! CouponKey(secret: "fixture-coupon-secret")

    init(persistent: Bool = false, connections: Int = 2, redisArguments: [String] = []) async throws {
        redis = try await TestRedis.start(persistent: persistent, extraArguments: redisArguments)
        clock = ManualEngineClock()
        engine = try await Engine.start(redis: redis.client(connections: connections), clock: clock, couponKey: Self.couponKey)
    }

    /// An account with `balance` of top-up credit.
    @discardableResult
    func account(_ name: String, balance: String = "0", creditLimit: String = "0") async throws -> AccountID {
        let id = try AccountID(name)
        _ = try await engine.createAccount(id, creditLimit: try Money(parsing: creditLimit))
        if balance != "0" {
            let decision = try await engine.credit(id, amount: try Money(parsing: balance), requestID: try RequestID("seed-\(name)"))
            precondition(decision.allowed)
        }
        return id
    }

    func ledgerSum(_ id: AccountID) async throws -> Int64 {
        var total: Int64 = 0
        var cursor: String?
        repeat {
            let page = try await engine.ledger(id, limit: 1000, cursor: cursor)
            total += page.entries.reduce(0) { $0 + $1.amount.micros }
            cursor = page.nextCursor
        } while cursor != nil
        return total
    }

    func allEntries(_ id: AccountID) async throws -> [LedgerEntry] {
        var entries: [LedgerEntry] = []
        var cursor: String?
        repeat {
            let page = try await engine.ledger(id, limit: 1000, cursor: cursor)
            entries += page.entries
            cursor = page.nextCursor
        } while cursor != nil
        return entries
    }
}

func money(_ text: String) -> Money {
    // Test literals are known-good; a typo should fail loudly.
    do { return try Money(parsing: text, allowNegative: true) } catch { preconditionFailure("bad test amount \(text)") }
}

func request(_ text: String) -> RequestID {
    do { return try RequestID(text) } catch { preconditionFailure("bad test request id \(text)") }
}
