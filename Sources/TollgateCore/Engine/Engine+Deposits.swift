import TollgateRedis

extension Engine {
    /// Records a pending deposit of `credits` on an account: `tokenAmount` of `token` through
    /// `provider`. The id returned goes to the provider's checkout, which sends it back.
    public func createDeposit(
        _ id: AccountID, credits: Money, token: String, tokenAmount: String, provider: String,
        depositID: DepositID? = nil
    ) async throws(TollgateError) -> Deposit {
        guard credits.isPositive else { throw TollgateError(.invalidAmount, "a deposit must be a positive amount") }
        let depositID = depositID ?? DepositID(account: id)
        guard depositID.account == id else { throw TollgateError(.invalidArgument, "the deposit id names another account") }
        let decision = try await step("deposit_create", id, nil, [
            depositID.description, String(credits.micros), token, tokenAmount, provider,
        ])
        if let reason = decision.reason { throw TollgateError(TollgateError.Code(reason.rawValue), reason.explanation) }
        return try await deposit(depositID)
    }

    /// Applies the provider's word on a deposit: `completed` credits `credits` once (by the
    /// provider's transaction id, and by the deposit's status), flagged when it differs
    /// from the request; `failed` marks a pending deposit failed.
    public func settleDeposit(
        _ depositID: DepositID, provider: String, providerTransactionID: String, completed: Bool,
        credits: Money, received: String
    ) async throws(TollgateError) -> DepositSettlement {
        guard !providerTransactionID.isEmpty, providerTransactionID.utf8.count <= 200 else {
            throw TollgateError(.invalidArgument, "a provider transaction id is 1 to 200 bytes")
        }
        if completed, !credits.isPositive {
            throw TollgateError(.invalidAmount, "a completed deposit must credit a positive amount")
        }
        let decision = try await step("deposit_complete", depositID.account, nil, [
            depositID.description, provider, providerTransactionID, completed ? "completed" : "failed",
            String(credits.micros), received,
        ])
        return DepositSettlement(decision: decision, flagged: decision.allowed && decision.detail == 1)
    }

    /// One deposit.
    public func deposit(_ depositID: DepositID) async throws(TollgateError) -> Deposit {
        let reply = try await send(RedisCommand(["HGETALL", AccountKeys(depositID.account).deposit(depositID.description)]))
        guard let deposit = try Deposit(hash: reply, id: depositID) else {
            throw TollgateError(.depositNotFound, "no deposit '\(depositID)'")
        }
        return deposit
    }

    /// An account's deposits, newest first.
    public func deposits(_ id: AccountID, limit: Int = 100) async throws(TollgateError) -> [Deposit] {
        guard (1...1000).contains(limit) else { throw TollgateError(.invalidArgument, "limit must be between 1 and 1000") }
        let keys = AccountKeys(id)
        guard try await send(RedisCommand(["EXISTS", keys.account])).int64 == 1 else {
            throw TollgateError(.accountNotFound, "no account '\(id)'")
        }
        let ids = try await send(RedisCommand(["ZREVRANGE", keys.deposits, "0", String(limit - 1)]))
        var deposits: [Deposit] = []
        for raw in ids.array ?? [] {
            guard let text = raw.string, let depositID = try? DepositID(parsing: text) else { continue }
            deposits.append(try await deposit(depositID))
        }
        return deposits
    }
}

extension Deposit {
    /// Reads the hash `deposit_create` and `deposit_complete` write; nil when it is empty.
    init?(hash reply: RESPValue, id: DepositID) throws(TollgateError) {
        guard let flat = reply.array else { throw TollgateError(.redisError, "unexpected deposit reply: \(reply)") }
        if flat.isEmpty { return nil }
        var fields: [String: String] = [:]
        var index = 0
        while index + 1 < flat.count {
            if let name = flat[index].string { fields[name] = flat[index + 1].string }
            index += 2
        }
        guard let status = fields["status"].flatMap(DepositStatus.init(rawValue:)),
              let credits = fields["credits"].flatMap({ Int64($0) }).flatMap(Money.init(micros:)),
              let created = fields["created"].flatMap({ Int64($0) }) else {
            throw TollgateError(.redisError, "deposit \(id) is malformed")
        }
        self.init(
            id: id, status: status, credits: credits, token: fields["token"] ?? "", tokenAmount: fields["token_amount"] ?? "",
            provider: fields["provider"] ?? "", created: created, updated: fields["updated"].flatMap { Int64($0) },
            providerTransactionID: fields["provider_tx"], credited: fields["credited"].flatMap { Int64($0) }.flatMap(Money.init(micros:)),
            received: fields["received"], flagged: fields["flagged"] == "1", entryID: fields["entry"])
    }
}
