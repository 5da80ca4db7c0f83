import TollgateRedis

extension Engine {
    /// Makes the coupons in Redis match `couponKey`. The first start records the secret's
    /// fingerprint; a later start with another secret is refused (`coupon_secret_mismatch`),
    /// since every code would read as invalid. Coupons that earlier versions kept under the plain
    /// SHA-256 of their code are moved to their keyed hash, each redeemer's marker with them.
    ///
    /// Every move is idempotent, so several servers may run this at once, and a start that
    /// crashed halfway is completed by the next. A coupon being moved reads as `invalid` for
    /// the moment it takes. The search (a `SCAN` of every key) runs until one has found every
    /// coupon moved; later starts and CLI commands skip it, so coupons that a server of an
    /// earlier version makes after that stay unkeyed: upgrade every server before making more.
    /// Returns how many coupons this call moved.
    @discardableResult
    public func prepareCoupons() async throws(TollgateError) -> Int {
        let key = try requireCouponKey()
        let record = CouponCode.secretRecordKey
        _ = try await send(RedisCommand(["HSETNX", record, "fingerprint", key.fingerprint]))
        let fields = try await send(RedisCommand(["HMGET", record, "fingerprint", "moved"])).array ?? []
        if let fingerprint = fields.first?.string, fingerprint != key.fingerprint {
            throw TollgateError(.couponSecretMismatch, """
                Redis holds coupons hashed with another coupon secret (fingerprint \(fingerprint), this one \(key.fingerprint)): \
                give the secret the first server used
                """)
        }
        if fields.count == 2, !fields[1].isNull { return 0 }
        let records: [String]
        do {
            records = try await redis.scanKeys(matching: CouponCode.Unkeyed.recordPattern)
        } catch {
            throw TollgateError(error)
        }
        var moved = 0
        for found in records {
            guard let unkeyed = CouponCode.Unkeyed.hash(ofRecord: found) else { continue }
            try await moveUnkeyedCoupon(unkeyed, to: key.hash(unkeyed: unkeyed))
            moved += 1
        }
        _ = try await send(RedisCommand(["HSET", record, "moved", String(clock.nowMilliseconds())]))
        return moved
    }

    /// Moves one coupon in the order that keeps it safe at every step: the redeemers' markers
    /// first (while the old redeemers set still names them), so no account that redeemed the code
    /// can redeem it again under its new hash; then copies of the record and its redeemers; the
    /// old keys last. A copy never overwrites (a concurrent or earlier move made it already).
    private func moveUnkeyedCoupon(_ unkeyed: String, to keyed: String) async throws(TollgateError) {
        let old = CouponCode.Unkeyed.keys(hash: unkeyed)
        let new = CouponCode.keys(hash: keyed)
        for member in try await send(RedisCommand(["SMEMBERS", old.redeemers])).array ?? [] {
            guard let raw = member.string, let account = try? AccountID(raw) else { continue }
            let command = RedisCommand.fcall("coupon_rekey", keys: [AccountKeys(account).account], arguments: [unkeyed, keyed])
            if case .error(let message) = try await Self.call(redis, command).get() { throw TollgateError(serverReply: message) }
        }
        for (from, to) in [(old.record, new.record), (old.redeemers, new.redeemers)] {
            guard let payload = try await send(RedisCommand(["DUMP", from])).bytes else { continue }
            var restore = RedisCommand(["RESTORE", to, "0"])
            restore.append(payload)
            let reply: RESPValue
            do {
                reply = try await redis.sendReturningErrors(restore)
            } catch {
                throw TollgateError(error)
            }
            // Refused because the copy exists: an earlier or concurrent move made it.
            if case .error(let message) = reply, try await send(RedisCommand(["EXISTS", to])).int64 != 1 {
                throw TollgateError(.redisError, "cannot copy coupon key \(from): \(message)")
            }
        }
        _ = try await send(RedisCommand(["DEL", old.record]))
        _ = try await send(RedisCommand(["DEL", old.redeemers]))
    }
}
