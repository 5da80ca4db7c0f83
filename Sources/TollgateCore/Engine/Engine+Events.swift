import TollgateRedis

extension Engine {
    /// The account as of its newest ledger entry, read in one atomic step.
    public func snapshot(_ id: AccountID) async throws(TollgateError) -> AccountSnapshot {
        let reply = try await call("events_snapshot", id, [])
        guard let f = reply.array, f.count == 8, let promotional = f[7].int64.flatMap(Money.init(micros:)),
              let balance = f[0].int64.flatMap(Money.init(micros:)), let held = f[1].int64.flatMap(Money.init(micros:)),
              let status = f[2].string.flatMap(AccountStatus.init(rawValue:)),
              let creditLimit = f[3].int64.flatMap(Money.init(micros:)), let last = f[4].string,
              let threshold = f[5].int64, let armed = f[6].int64 else {
            throw TollgateError(.redisError, "unexpected events_snapshot reply: \(reply)")
        }
        return AccountSnapshot(
            account: AccountState(id: id, status: status, balance: balance, held: held, creditLimit: creditLimit, promotional: promotional),
            lastEntryID: last.isEmpty ? .zero : (EventID(last) ?? .zero),
            lowBalanceAlert: threshold < 0 ? nil : Money(micros: threshold).map { LowBalanceAlert(threshold: $0, armed: armed == 1) })
    }

    /// The account's changes strictly after `after`, oldest first, at most `limit` of them.
    public func events(_ id: AccountID, after: EventID, limit: Int) async throws(TollgateError) -> [AccountEvent] {
        let entries = try await ledgerForward(id, after: after == .zero ? nil : after.description, through: "+", count: limit)
        return entries.compactMap { AccountEvent(entry: $0, account: id) }
    }

    /// Whether the account's ledger holds an entry with this id (a resume point is only good
    /// if it names a real entry).
    public func ledgerContains(_ id: AccountID, _ entry: EventID) async throws(TollgateError) -> Bool {
        let reply = try await send(RedisCommand(["XRANGE", AccountKeys(id).ledger, entry.description, entry.description, "COUNT", "1"]))
        return reply.array?.isEmpty == false
    }

    /// Sets (or with nil clears) the account's low-balance alert threshold.
    @discardableResult
    public func setLowBalanceAlert(_ id: AccountID, threshold: Money?) async throws(TollgateError) -> LowBalanceAlert? {
        if let threshold, threshold.micros < 0 {
            throw TollgateError(.invalidAmount, "a threshold must not be negative")
        }
        let reply = try await call("alert_set", id, [threshold.map { String($0.micros) } ?? ""])
        guard let f = reply.array, f.count == 2, let value = f[0].int64, let armed = f[1].int64 else {
            throw TollgateError(.redisError, "unexpected alert_set reply: \(reply)")
        }
        return value < 0 ? nil : Money(micros: value).map { LowBalanceAlert(threshold: $0, armed: armed == 1) }
    }

    /// `FCALL name` on an account's step keys with the usual clock arguments, returning the raw reply.
    private func call(_ function: String, _ id: AccountID, _ arguments: [String]) async throws(TollgateError) -> RESPValue {
        let now = clock.nowMilliseconds()
        let command = RedisCommand.fcall(
            function, keys: AccountKeys(id).forStep(), arguments: [String(now)] + SpendPeriods(milliseconds: now).arguments + arguments)
        let reply: RESPValue
        do {
            reply = try await redis.call(TollgateLua.library, command)
        } catch {
            throw TollgateError(error)
        }
        if case .error(let message) = reply {
            throw TollgateError(serverReply: message)
        }
        return reply
    }
}

extension Engine {
    /// Claims the outgoing notification of the alert raised by `entry`: true for exactly one
    /// caller, however many server processes saw the alert (kept a week).
    public func claimAlertDelivery(_ id: AccountID, _ entry: EventID) async throws(TollgateError) -> Bool {
        let key = AccountKeys(id).alertDelivery(entry.description)
        let reply = try await send(RedisCommand(["SET", key, "1", "NX", "EX", "604800"]))
        return reply.string == "OK"
    }
}

extension AccountKeys {
    /// Marks that the alert raised by a ledger entry was handed to the webhook sender.
    func alertDelivery(_ entryID: String) -> String {
        account.dropLast("acct".count) + "alertsent:" + entryID
    }
}
