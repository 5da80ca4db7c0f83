import TollgateCore
import TollgateRedis

/// The engine in-process, on a Redis address: what a Swift gateway embedding Tollgate does.
/// Every worker shares one `Engine` (one pool of Redis connections), as such a gateway would.
public struct EngineTarget: LoadTarget {
    /// The engine every session uses.
    public let engine: Engine
    public var address: String { "\(engine.redis.configuration.address)" }

    /// Connects to `redisURL` with `connections` pooled connections and installs the Lua when
    /// Redis does not run this build's.
    public static func connect(
        redisURL: String, connections: Int = 4, timeout: Duration = .seconds(2), couponKey: CouponKey
    ) async throws(LoadTestError) -> EngineTarget {
        let address: RedisAddress
        do {
            address = try RedisAddress(parsing: redisURL)
        } catch {
            throw LoadTestError(.invalidConfiguration, "'\(redisURL)' is not a Redis address: \(error.message)")
        }
        return try await connect(topology: .single(address), connections: connections, timeout: timeout, couponKey: couponKey)
    }

    /// Connects to one Redis or a Redis Cluster (`connections` per primary there) and installs
    /// the Lua when Redis does not run this build's.
    public static func connect(
        topology: RedisTopology, connections: Int = 4, timeout: Duration = .seconds(2), couponKey: CouponKey
    ) async throws(LoadTestError) -> EngineTarget {
        let client: RedisClient
        do {
            client = try topology.client(RedisConfiguration(
                address: topology.primaryAddress, connectTimeout: timeout, commandTimeout: timeout, connectionCount: connections))
        } catch {
            throw LoadTestError(.invalidConfiguration, error.message)
        }
        do {
            return EngineTarget(engine: try await Engine.start(redis: client, couponKey: couponKey))
        } catch where error.code == .couponSecretMismatch {
            client.close()
            throw LoadTestError(.invalidConfiguration, error.message)
        } catch {
            client.close()
            throw LoadTestError(.unreachable, "cannot reach Redis at \(topology): \(error.message)")
        }
    }

    /// A target over an engine the caller made (and closes).
    public init(engine: Engine) {
        self.engine = engine
    }

    public func withSession<Result: Sendable>(
        _ body: (any LoadSession) async throws(LoadTestError) -> Result
    ) async throws(LoadTestError) -> Result {
        try await body(EngineSession(engine: engine))
    }

    public func shutdown() async {
        engine.redis.close()
    }
}

/// A session over the shared engine.
final class EngineSession: LoadSession {
    let engine: Engine

    init(engine: Engine) { self.engine = engine }

    private func call<T>(_ body: () async throws(TollgateError) -> T) async throws(LoadTestError) -> T {
        do {
            return try await body()
        } catch {
            throw LoadTestError(.requestFailed, "\(error.code): \(error.message)")
        }
    }

    private static func outcome(_ decision: Decision) -> CallOutcome {
        CallOutcome(allowed: decision.allowed, reason: decision.reason?.rawValue, amount: decision.amount,
                    holdID: decision.holdID?.description, entryID: decision.entryID)
    }

    private static func requestID(_ text: String) throws(LoadTestError) -> RequestID {
        do { return try RequestID(text) } catch { throw LoadTestError(.invalidConfiguration, error.message) }
    }

    private static func hold(_ text: String) throws(LoadTestError) -> HoldID {
        do { return try HoldID(parsing: text) } catch { throw LoadTestError(.unexpectedResponse, error.message) }
    }

    func authorize(key: String, usage: [UsageItem], requestID: String, holdTTL: Duration?) async throws(LoadTestError) -> CallOutcome {
        let id = try Self.requestID(requestID)
        let mode: AuthorizeMode = holdTTL.map { .hold(ttl: $0) } ?? .debit
        return Self.outcome(try await call { () async throws(TollgateError) in
            try await engine.authorize(.key(secret: key), usage: usage, requestID: id, mode: mode)
        })
    }

    func report(hold: String, usage: [UsageItem], requestID: String) async throws(LoadTestError) -> CallOutcome {
        let id = try Self.requestID(requestID), hold = try Self.hold(hold)
        return Self.outcome(try await call { () async throws(TollgateError) in
            try await engine.report(hold, usage: usage, requestID: id)
        })
    }

    func settle(hold: String, usage: [UsageItem]?, requestID: String) async throws(LoadTestError) -> CallOutcome {
        let id = try Self.requestID(requestID), hold = try Self.hold(hold)
        return Self.outcome(try await call { () async throws(TollgateError) in
            try await engine.settle(hold, usage: usage, requestID: id)
        })
    }

    func setPrice(meter: String, price: Money, per: Int64) async throws(LoadTestError) {
        try await call { () async throws(TollgateError) in
            try await engine.setPrice(try PriceKey(meter: meter), try Price(price: price, per: per))
        }
    }

    func createAccount(_ id: AccountID) async throws(LoadTestError) {
        _ = try await call { () async throws(TollgateError) in try await engine.createAccount(id) }
    }

    func createKey(for id: AccountID) async throws(LoadTestError) -> (keyID: String, secret: String) {
        let created = try await call { () async throws(TollgateError) in try await engine.createKey(for: id) }
        return (created.keyID.rawValue, created.secret)
    }

    func setKeyRateLimit(keyID: String, perSecond: Int64) async throws(LoadTestError) {
        try await call { () async throws(TollgateError) in
            var update = LimitsUpdate()
            try update.set(.rps, count: perSecond)
            try await engine.setLimits(.key(try KeyID(keyID)), update)
        }
    }

    func credit(_ id: AccountID, amount: Money, requestID: String) async throws(LoadTestError) -> CallOutcome {
        let request = try Self.requestID(requestID)
        return Self.outcome(try await call { () async throws(TollgateError) in
            try await engine.credit(id, amount: amount, requestID: request)
        })
    }

    func createCoupons(amount: Money, count: Int) async throws(LoadTestError) -> [String] {
        let expires = engine.clock.nowMilliseconds() + 3_600_000
        return try await call { () async throws(TollgateError) in
            try await engine.createCoupons(amount: amount, count: count, expires: expires).codes
        }
    }

    func redeem(_ id: AccountID, code: String) async throws(LoadTestError) -> CallOutcome {
        Self.outcome(try await call { () async throws(TollgateError) in try await engine.redeemCoupon(id, code: code).decision })
    }

    func ledger(_ id: AccountID, cursor: String?) async throws(LoadTestError) -> (records: [LedgerRecord], next: String?) {
        let page = try await call { () async throws(TollgateError) in try await engine.ledger(id, limit: 10_000, cursor: cursor) }
        return (page.entries.map { LedgerRecord(id: $0.id, requestID: $0.requestID, kind: $0.kind.rawValue, amount: $0.amount) }, page.nextCursor)
    }

    func account(_ id: AccountID) async throws(LoadTestError) -> (balance: Money, held: Money) {
        let state = try await call { () async throws(TollgateError) in try await engine.account(id) }
        return (state.balance, state.held)
    }

    func auditProblems(_ ids: [AccountID]) async throws(LoadTestError) -> [String] {
        var problems: [String] = []
        for id in ids {
            let audit = try await call { () async throws(TollgateError) in try await engine.audit(id) }
            problems += audit.problems.map { "\(id): \($0)" }
        }
        return problems
    }
}
