import TollgateRedis

/// Tollgate's engine: every mutation of an account is one atomic Lua step in Redis,
/// idempotent by the caller's request id (I3), writing a ledger entry per balance change (I2).
/// The invariants I1–I7 cited here and in `lua/` are defined in docs/ARCHITECTURE.md.
///
/// A value type holding a shared `RedisClient`; copy and share it freely between tasks.
public struct Engine: Sendable {
    /// The Redis client the engine runs on.
    public let redis: RedisClient
    /// Where "now" comes from (I6).
    public let clock: any EngineClock
    /// The price book and API-key directory, shared by copies of this engine.
    let caches: EngineCaches
    /// Whether a decision (debit, hold, authorize) whose reply does not come in time is voided
    /// once Redis answers again, so a call answered "unavailable" is never charged (true), or
    /// left to be replayed by the caller (false: `--fail-open`, whose journal replays it).
    public var voidsUnansweredDecisions = true
    /// The secret coupon codes are hashed with; creating or redeeming a coupon without one is
    /// refused (`coupon_secret_missing`). Call `prepareCoupons()` once it is set.
    public var couponKey: CouponKey?

    /// Decisions whose reply never came (the caller was told 503), to be voided once Redis
    /// answers again (`retryPendingVoids()`).
    public let pendingVoidStore: any PendingVoidStore

    /// Makes an engine over a client without touching Redis; call `prepare()` before use, or
    /// use `start(redis:clock:)`.
    public init(redis: RedisClient, clock: any EngineClock = SystemEngineClock(),
                pendingVoids: any PendingVoidStore = InMemoryPendingVoids()) {
        self.redis = redis
        self.clock = clock
        self.caches = EngineCaches()
        self.pendingVoidStore = pendingVoids
    }

    /// Connects, makes Redis run exactly the Lua in `lua/`, and returns a ready engine; with a
    /// coupon key, also makes Redis's coupons match it (`prepareCoupons()`).
    public static func start(
        redis: RedisClient,
        clock: any EngineClock = SystemEngineClock(),
        couponKey: CouponKey? = nil
    ) async throws(TollgateError) -> Engine {
        var engine = Engine(redis: redis, clock: clock)
        engine.couponKey = couponKey
        _ = try await engine.prepare()
        if couponKey != nil { try await engine.prepareCoupons() }
        return engine
    }

    /// Checks Redis answers and installs the Lua library when it is missing or differs
    /// from the repository's; afterwards Redis runs exactly `TollgateLua.library`.
    @discardableResult
    public func prepare() async throws(TollgateError) -> RedisFunctionInstallOutcome {
        do {
            try await redis.ping()
            return try await redis.install(TollgateLua.library)
        } catch {
            throw TollgateError(error)
        }
    }

    /// Whether Redis runs exactly the Lua of this build.
    public func luaMatchesRepository() async throws(TollgateError) -> Bool {
        // One small read-only call per primary: the library's own fingerprint. A library
        // without the function (an older one) answers an error reply: not this library.
        let replies: [RESPValue]
        do {
            replies = try await redis.sendToEveryPrimary(.fcall("library_fingerprint", keys: [], arguments: []))
        } catch {
            throw TollgateError(error)
        }
        return replies.allSatisfy { $0.string == TollgateLua.fingerprint }
    }

    // MARK: Accounts

    /// Creates an account (status active, balance 0); `account_exists` if the id is taken.
    public func createAccount(_ id: AccountID, creditLimit: Money = .zero) async throws(TollgateError) -> AccountState {
        guard creditLimit.micros >= 0 else {
            throw TollgateError(.invalidAmount, "a credit limit must not be negative")
        }
        return try await accountStep("account_create", id, [String(creditLimit.micros)])
    }

    /// Reads an account (expiring any holds past their TTL first).
    public func account(_ id: AccountID) async throws(TollgateError) -> AccountState {
        try await accountStep("account_get", id, [])
    }

    /// Freezes an account: spending is refused with `account_frozen` until unfrozen.
    public func freeze(_ id: AccountID) async throws(TollgateError) -> AccountState {
        try await accountStep("account_set_status", id, [AccountStatus.frozen.rawValue])
    }

    /// Lets a frozen account spend again.
    public func unfreeze(_ id: AccountID) async throws(TollgateError) -> AccountState {
        try await accountStep("account_set_status", id, [AccountStatus.active.rawValue])
    }

    // MARK: Money in and out

    /// Adds credit. Only an `adjustment` may be negative; a negative adjustment takes paid
    /// credit and is refused (`insufficient_credit`) if it would take available credit, or the
    /// paid part of the balance, below −credit limit (else promotional credit expiring later
    /// would overdraw the account, I1).
    /// A `grant` is promotional credit: spent before paid credit, and gone at `expires`
    /// (ms since the epoch; nil: never) with an `expire` ledger entry.
    public func credit(
        _ id: AccountID, amount: Money, kind: CreditKind = .topup, expires: Int64? = nil, requestID: RequestID
    ) async throws(TollgateError) -> Decision {
        guard amount.micros != 0, amount.isPositive || kind == .adjustment else {
            throw TollgateError(.invalidAmount, kind == .adjustment
                ? "an adjustment must not be zero" : "a \(kind.rawValue) must be a positive amount")
        }
        if expires != nil, kind != .grant {
            throw TollgateError(.invalidArgument, "only a grant can expire")
        }
        return try await step("credit", id, requestID, [
            String(amount.micros), kind.rawValue, requestID.rawValue, expires.map(String.init) ?? "",
        ])
    }

    /// Debits a plain amount now; refused when available credit (plus the credit limit)
    /// does not cover it, or the account is not active.
    public func debit(_ id: AccountID, amount: Money, requestID: RequestID) async throws(TollgateError) -> Decision {
        try requirePositive(amount, "a debit")
        return try await step("debit", id, requestID, [String(amount.micros), requestID.rawValue])
    }

    // MARK: Holds (I4)

    /// Reserves `amount` until captured and released, or until `ttl` passes (then it expires
    /// by itself). The decision's `holdID` names the hold.
    public func hold(
        _ id: AccountID, amount: Money, ttl: Duration, requestID: RequestID
    ) async throws(TollgateError) -> Decision {
        try requirePositive(amount, "a hold")
        let milliseconds = try Self.holdTTL(ttl)
        return try await step("hold", id, requestID, [String(amount.micros), String(milliseconds), requestID.rawValue])
    }

    /// Charges `amount` against a hold: from what it still reserves first, then from
    /// available credit (refused if that does not cover the rest). Call it once per token
    /// batch if you like; the hold stays open until released or expired.
    public func capture(_ hold: HoldID, amount: Money, requestID: RequestID) async throws(TollgateError) -> Decision {
        try requirePositive(amount, "a capture")
        return try await step("capture", hold.account, requestID,
                              [String(hold.sequence), String(amount.micros), requestID.rawValue])
    }

    /// Closes a hold, freeing what it still reserves. Releasing twice with the same request
    /// id replays the first answer; a closed hold is `hold_not_found`.
    public func release(_ hold: HoldID, requestID: RequestID) async throws(TollgateError) -> Decision {
        try await step("release", hold.account, requestID, [String(hold.sequence), requestID.rawValue])
    }

    // MARK: Plumbing

    private func accountStep(_ function: String, _ id: AccountID, _ arguments: [String]) async throws(TollgateError) -> AccountState {
        guard let account = try await step(function, id, nil, arguments).account else {
            throw TollgateError(.redisError, "\(function) answered without the account")
        }
        return account
    }

    private func requirePositive(_ amount: Money, _ what: String) throws(TollgateError) {
        guard amount.isPositive else {
            throw TollgateError(.invalidAmount, "\(what) must be a positive amount")
        }
    }

    /// Runs one Lua step on an account: `FCALL name keys now periods arguments...`.
    func step(
        _ function: String, _ id: AccountID, _ requestID: RequestID?, _ arguments: [String]
    ) async throws(TollgateError) -> Decision {
        let keys = AccountKeys(id).forStep(requestID)
        let now = clock.nowMilliseconds()
        let command = RedisCommand.fcall(
            function, keys: keys, arguments: [String(now)] + SpendPeriods(milliseconds: now).arguments + arguments)
        let reply: RESPValue
        do {
            reply = try await redis.call(TollgateLua.library, command)
        } catch {
            if error.code == .timeout || error.code == .connectionClosed, let requestID {
                noteUnanswered(function, id, requestID)
            }
            throw TollgateError(error)
        }
        if case .error(let message) = reply {
            throw TollgateError(serverReply: message)
        }
        return try Decision(stepReply: reply, account: id, function: function)
    }
}

extension Decision {
    /// Reads the fixed reply shape of `lua/10_account.lua`'s `reply()`.
    init(stepReply reply: RESPValue, account id: AccountID, function: String) throws(TollgateError) {
        guard let fields = reply.array, fields.count == 14,
              let outcome = fields[0].string, let reason = fields[1].string,
              let balance = fields[2].int64.flatMap(Money.init(micros:)),
              let held = fields[3].int64.flatMap(Money.init(micros:)),
              let creditLimit = fields[4].int64.flatMap(Money.init(micros:)),
              let status = fields[5].string.flatMap(AccountStatus.init(rawValue:)),
              let entryID = fields[6].string, let holdSequence = fields[7].string,
              let amount = fields[8].int64, let detail = fields[9].int64, let replayed = fields[10].int64,
              let retryAfter = fields[11].int64, let limitFields = fields[12].array,
              let promotional = fields[13].int64.flatMap(Money.init(micros:))
        else {
            throw TollgateError(.redisError, "unexpected reply from Tollgate's Lua: \(reply)")
        }
        let allowed = outcome == "ok"
        self.init(
            allowed: allowed,
            reason: allowed ? nil : DenialReason(reason),
            account: AccountState(id: id, status: status, balance: balance, held: held, creditLimit: creditLimit,
                                  promotional: promotional),
            entryID: entryID.isEmpty ? nil : entryID,
            holdID: Int64(holdSequence).map { HoldID(account: id, sequence: $0) },
            amount: Money(micros: amount) ?? .zero,
            // The detail field means what the step says: a hold's expiry, or the net charged
            // on a hold so far.
            holdExpiresAt: ["hold", "authorize"].contains(function) && allowed && !holdSequence.isEmpty ? detail : nil,
            capturedOnHold: ["capture", "release", "report", "settle"].contains(function) && allowed ? Money(micros: detail) : nil,
            replayed: replayed == 1,
            retryAfterMilliseconds: retryAfter >= 0 ? retryAfter : nil,
            limits: try Self.limits(limitFields)
        )
        self.detail = detail
    }

    private static func limits(_ flat: [RESPValue]) throws(TollgateError) -> [LimitStatus] {
        var statuses: [LimitStatus] = []
        var index = 0
        while index + 3 < flat.count {
            guard let qualified = flat[index].string, let dot = qualified.firstIndex(of: "."),
                  let limit = flat[index + 1].int64, let remaining = flat[index + 2].int64,
                  let reset = flat[index + 3].int64 else {
                throw TollgateError(.redisError, "unexpected limits report from Tollgate's Lua")
            }
            let rawName = String(qualified[qualified.index(after: dot)...])
            let name = LimitName(rawValue: rawName) ?? LimitName.allCases.first { $0.displayName == rawName }
            if let name {
                statuses.append(LimitStatus(
                    scope: String(qualified[..<dot]), name: name, limit: limit, remaining: remaining, resetMilliseconds: reset))
            }
            index += 4
        }
        return statuses
    }
}
