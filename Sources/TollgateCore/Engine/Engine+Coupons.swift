import TollgateRedis

/// How many failed coupon attempts an account or a client address may make per window
/// before every attempt is refused with `too_many_attempts` (against guessing).
public struct CouponGuessingPolicy: Sendable, Hashable {
    public var maxFailures: Int
    public var window: Duration

    public init(maxFailures: Int = 10, window: Duration = .seconds(15 * 60)) {
        self.maxFailures = maxFailures
        self.window = window
    }
}

extension Engine {
    /// Creates `count` unique coupon codes worth `amount` each, redeemable `maxRedemptions`
    /// times (by different accounts) until `expires`, by any account or only `account`.
    /// The credit they give is promotional and expires at `creditExpires` (nil: never).
    ///
    /// With a `requestID`, the codes are drawn from it and the coupon secret, so a retry of the
    /// same request makes no new codes and returns the same ones (those a crash left unmade are
    /// made now); the same request id with other figures is `idempotency_conflict`.
    public func createCoupons(
        amount: Money, count: Int, maxRedemptions: Int = 1, expires: Int64,
        account: AccountID? = nil, creditExpires: Int64? = nil, requestID: RequestID? = nil
    ) async throws(TollgateError) -> CouponBatch {
        guard amount.isPositive else { throw TollgateError(.invalidAmount, "a coupon must be worth a positive amount") }
        guard (1...100_000).contains(count) else { throw TollgateError(.invalidArgument, "count must be between 1 and 100000") }
        guard (1...1_000_000_000).contains(maxRedemptions) else {
            throw TollgateError(.invalidArgument, "max redemptions must be between 1 and 1000000000")
        }
        let now = clock.nowMilliseconds()
        guard expires > now else { throw TollgateError(.invalidArgument, "a coupon's expiry must be in the future") }
        if let creditExpires, creditExpires <= now {
            throw TollgateError(.invalidArgument, "the credit's expiry must be in the future")
        }
        let key = try requireCouponKey()
        let batch = requestID?.rawValue ?? "random:" + APIKeySecret.randomCharacters(32)
        let figures = [String(amount.micros), String(maxRedemptions), String(expires), account?.rawValue ?? "", String(creditExpires ?? 0)]
        let fingerprints = key.batchFingerprints(batch: batch, operation: figures.joined(separator: "|"))
        var codes: [String] = []
        codes.reserveCapacity(count)
        // Codes are drawn by index; one that collides with another batch's is skipped, so a
        // retry skips the same ones and returns the same codes in the same order.
        var next = 0
        while codes.count < count {
            let indices = next..<(next + min(1000, count - codes.count))
            next = indices.upperBound
            let replies = await withTaskGroup(of: (Int, String, Result<RESPValue, TollgateError>).self) { group in
                for index in indices {
                    var generator = key.codeGenerator(batch: batch, index: index)
                    let code = CouponCode.generate(using: &generator)
                    let command = RedisCommand.fcall(
                        "coupon_create", keys: [CouponCode.keys(hash: key.hash(code: code)).record],
                        arguments: [String(now)] + SpendPeriods(milliseconds: now).arguments + figures
                            + [fingerprints.request, fingerprints.operation])
                    group.addTask { (index, code, await Self.call(redis, command)) }
                }
                var all: [(Int, String, Result<RESPValue, TollgateError>)] = []
                for await reply in group { all.append(reply) }
                return all.sorted { $0.0 < $1.0 }
            }
            for (_, code, result) in replies {
                switch result {
                case .failure(let error): throw error
                case .success(.error(let message)):
                    let error = TollgateError(serverReply: message)
                    if error.code == TollgateError.Code.couponExists { continue }  // another batch's code: draw again
                    throw error
                case .success: codes.append(code)
                }
            }
        }
        return CouponBatch(codes: codes, amount: amount, maxRedemptions: maxRedemptions, expires: expires,
                           account: account, creditExpires: creditExpires)
    }

    /// Redeems a coupon code on an account: never beyond the code's limit, never twice by one
    /// account, under any concurrency and any crash. Failed attempts count against the account
    /// and `clientAddress`.
    ///
    /// The coupon and the account live in different slots, so this runs as steps, each atomic
    /// in its slot (see `lua/55_billing.lua`): a guessing check on the account, a claim on the
    /// coupon (the limit), then the credit on the account, which a permanent per-account marker
    /// makes happen at most once. A claim whose credit was cut off (a crash, a timeout) is
    /// completed by the next attempt. The same path runs on one Redis and on a cluster.
    ///
    /// With a `requestID`, a retry of a redemption that was applied replays its answer
    /// (`replayed`), even after the code ran out; refusals are decided afresh, as everywhere.
    public func redeemCoupon(
        _ id: AccountID, code: String, requestID: RequestID? = nil, clientAddress: String? = nil,
        policy: CouponGuessingPolicy = CouponGuessingPolicy()
    ) async throws(TollgateError) -> CouponRedemption {
        guard code.utf8.count <= 64 else { throw TollgateError(.invalidArgument, "a coupon code is at most 64 characters") }
        let hash = try requireCouponKey().hash(code: code)
        let keys = CouponCode.keys(hash: hash)
        let window = String(policy.window.wholeMilliseconds)
        let addressKey = clientAddress.map { "tg:couponfail:" + AccountKeys.encode($0) }
        var addressFailures: Int64 = 0
        var addressTTL: Int64 = 0
        if let addressKey {
            addressFailures = try await send(RedisCommand(["GET", addressKey])).int64 ?? 0
            if addressFailures > 0 { addressTTL = max(0, try await send(RedisCommand(["PTTL", addressKey])).int64 ?? 0) }
        }
        let check = try await step("coupon_precheck", id, requestID, [
            String(policy.maxFailures), String(addressFailures), String(addressTTL), hash,
        ])
        if check.replayed { return Self.redemption(check) }
        guard check.allowed else { return CouponRedemption(decision: check, creditExpires: nil) }

        let claim = try await couponCall("coupon_claim", keys, [
            String(clock.nowMilliseconds()), id.rawValue, check.detail == 1 ? "1" : "0",
        ])
        guard let fields = claim.array, fields.count == 3, let status = fields[0].string,
              let amount = fields[1].int64, let creditExpires = fields[2].int64 else {
            throw TollgateError(.redisError, "unexpected coupon_claim reply: \(claim)")
        }
        guard status == "claimed" || status == "reclaimed" else {
            let refused = try await step("coupon_fail", id, nil, [status, window])
            try await countAddressFailure(addressKey, window)
            return CouponRedemption(decision: refused, creditExpires: nil)
        }
        let decision = try await step("coupon_credit", id, requestID, [
            hash, String(hash.prefix(12)), String(amount), String(creditExpires), window,
        ])
        if decision.reason == .alreadyRedeemed {
            try await countAddressFailure(addressKey, window)
        } else if decision.reason == .accountClosed, status == "claimed" {
            _ = try await couponCall("coupon_unclaim", keys, [id.rawValue])
        }
        return Self.redemption(decision)
    }

    /// A redemption from `coupon_credit`'s answer (or its replay): the detail is the credit's expiry.
    private static func redemption(_ decision: Decision) -> CouponRedemption {
        CouponRedemption(decision: decision, creditExpires: decision.allowed && decision.detail < never ? decision.detail : nil)
    }

    func requireCouponKey() throws(TollgateError) -> CouponKey {
        guard let couponKey else {
            throw TollgateError(.couponSecretMissing, "no coupon secret is configured: coupon codes cannot be hashed")
        }
        return couponKey
    }

    private func couponCall(
        _ function: String, _ keys: (record: String, redeemers: String), _ arguments: [String]
    ) async throws(TollgateError) -> RESPValue {
        let reply: RESPValue
        do {
            reply = try await redis.call(TollgateLua.library, .fcall(function, keys: [keys.record, keys.redeemers], arguments: arguments))
        } catch {
            throw TollgateError(error)
        }
        if case .error(let message) = reply { throw TollgateError(serverReply: message) }
        return reply
    }

    private func countAddressFailure(_ key: String?, _ window: String) async throws(TollgateError) {
        guard let key else { return }
        let reply: RESPValue
        do {
            reply = try await redis.call(TollgateLua.library, .fcall("coupon_address_failed", keys: [key], arguments: [window]))
        } catch {
            throw TollgateError(error)
        }
        if case .error(let message) = reply { throw TollgateError(serverReply: message) }
    }

    /// One FCALL, its error as a value. A function rather than a typed `do`/`catch` inside the
    /// task group's child closure: built with -c release (Swift 6.3), that closure crashed the
    /// process ("pure virtual method called" in AsyncTask::completeFuture) on every batch.
    static func call(_ redis: RedisClient, _ command: RedisCommand) async -> Result<RESPValue, TollgateError> {
        do {
            return .success(try await redis.call(TollgateLua.library, command))
        } catch {
            return .failure(TollgateError(error))
        }
    }

    /// Lua's NEVER: the expiry of credit that does not expire.
    static let never: Int64 = 9_007_199_254_740_991
}
