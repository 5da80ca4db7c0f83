import TollgateRedis

/// What a provider says happened to a deposit's payment.
public enum DepositConfirmation: Sendable, Hashable {
    /// Paid: credit `credits` (what was received, converted), `received` as the provider wrote it.
    case completed(credits: Money, received: String)
    /// The payment failed.
    case failed
    /// The payment is refused for `reason` (e.g. `wrong_destination`); nothing is credited.
    case rejected(reason: String)
}

extension Engine {
    /// Records a pending deposit of `credits` on an account: `tokenAmount` of `token` to
    /// `address` on `network`, through `provider`. The id goes to the provider's checkout,
    /// which sends it back.
    ///
    /// A deposit id that exists already on this account for the same deposit (a retry with the
    /// id `DepositID.derived(account:requestID:)` gave) returns that deposit; on another account
    /// or for another deposit, `deposit_exists`.
    public func createDeposit(
        _ id: AccountID, credits: Money, token: String, tokenAmount: String, provider: String,
        network: String, address: String, depositID: DepositID = .random()
    ) async throws(TollgateError) -> Deposit {
        guard credits.isPositive else { throw TollgateError(.invalidAmount, "a deposit must be a positive amount") }
        // The index first: a deposit never exists without it. A refused deposit takes its index
        // back, so refusals (over the daily cap, a closed account) leave nothing behind; one
        // left by a crash in between is harmless (it names no record).
        func retried() async throws(TollgateError) -> Deposit? {
            let existing: Deposit
            do {
                existing = try await deposit(depositID, account: id)
            } catch where error.code == .depositNotFound {
                return nil
            }
            guard existing.credits == credits, existing.token == token, existing.tokenAmount == tokenAmount,
                  existing.provider == provider, existing.network == network, existing.address == address else {
                throw TollgateError(.depositExists, "this deposit id is taken by another deposit")
            }
            return existing
        }
        if try await send(RedisCommand(["SET", depositID.indexKey, id.rawValue, "NX"])).string != "OK" {
            if let existing = try await retried() { return existing }
            // The index is this account's, its deposit not written yet: a try with the same id
            // that crashed in between, or runs now. The step below decides (atomically).
            guard try await send(RedisCommand(["GET", depositID.indexKey])).string == id.rawValue else {
                throw TollgateError(.depositExists, "this deposit id is taken")
            }
        }
        let decision: Decision
        do {
            decision = try await step("deposit_create", id, nil, [
                depositID.rawValue, String(credits.micros), token, tokenAmount, provider, network, address,
            ])
        } catch where error.code == .depositExists {
            // A concurrent try with the same id wrote it first.
            if let existing = try await retried() { return existing }
            throw error
        } catch {
            if error.code != .redisUnavailable { _ = try? await send(RedisCommand(["DEL", depositID.indexKey])) }
            throw error
        }
        if let reason = decision.reason {
            _ = try? await send(RedisCommand(["DEL", depositID.indexKey]))
            throw TollgateError(TollgateError.Code(reason.rawValue), reason.explanation)
        }
        return try await deposit(depositID, account: id)
    }

    /// Applies the provider's word on a deposit, once per provider transaction.
    public func settleDeposit(
        _ depositID: DepositID, provider: String, providerTransactionID: String, confirmation: DepositConfirmation
    ) async throws(TollgateError) -> DepositSettlement {
        guard !providerTransactionID.isEmpty, providerTransactionID.utf8.count <= 200 else {
            throw TollgateError(.invalidArgument, "a provider transaction id is 1 to 200 bytes")
        }
        let account = try await account(of: depositID)
        var arguments = [depositID.rawValue, provider, providerTransactionID]
        switch confirmation {
        case .completed(let credits, let received):
            guard credits.isPositive else { throw TollgateError(.invalidAmount, "a completed deposit must credit a positive amount") }
            arguments += ["completed", String(credits.micros), received]
        case .failed:
            arguments += ["failed", "0", ""]
        case .rejected(let reason):
            arguments += ["rejected", "0", "", reason]
        }
        let decision = try await step("deposit_complete", account, nil, arguments)
        let outcome: DepositOutcome
        if decision.replayed {
            outcome = .duplicate
        } else {
            switch (confirmation, decision.detail) {
            case (.failed, _): outcome = .failed
            case (.rejected, _): outcome = .rejected
            case (_, 1): outcome = .amountMismatch
            case (_, 2): outcome = .duplicatePayment
            default: outcome = .credited
            }
        }
        return DepositSettlement(decision: decision, outcome: outcome)
    }

    /// The account a deposit belongs to.
    public func account(of depositID: DepositID) async throws(TollgateError) -> AccountID {
        guard let raw = try await send(RedisCommand(["GET", depositID.indexKey])).string else {
            throw TollgateError(.depositNotFound, "no deposit '\(depositID)'")
        }
        do { return try AccountID(raw) } catch { throw TollgateError(.redisError, "deposit index of \(depositID) is malformed") }
    }

    /// One deposit.
    public func deposit(_ depositID: DepositID, account: AccountID? = nil) async throws(TollgateError) -> Deposit {
        let owner: AccountID
        if let account { owner = account } else { owner = try await self.account(of: depositID) }
        let reply = try await send(RedisCommand(["HGETALL", AccountKeys(owner).deposit(depositID.rawValue)]))
        guard let deposit = try Deposit(hash: reply, id: depositID, account: owner) else {
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
            deposits.append(try await deposit(depositID, account: id))
        }
        return deposits
    }
}

extension Deposit {
    /// Reads the hash `deposit_create` and `deposit_complete` write; nil when it is empty.
    init?(hash reply: RESPValue, id: DepositID, account: AccountID) throws(TollgateError) {
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
            id: id, account: account, status: status, credits: credits, token: fields["token"] ?? "",
            tokenAmount: fields["token_amount"] ?? "", provider: fields["provider"] ?? "",
            network: fields["network"] ?? "", address: fields["address"] ?? "", created: created,
            updated: fields["updated"].flatMap { Int64($0) }, providerTransactionID: fields["provider_tx"],
            credited: fields["credited"].flatMap { Int64($0) }.flatMap(Money.init(micros:)),
            received: fields["received"], flagged: fields["flagged"] == "1", rejection: fields["rejection"],
            entryID: fields["entry"])
    }
}
