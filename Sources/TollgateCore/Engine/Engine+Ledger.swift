import TollgateRedis

extension Engine {
    /// Reads an account's ledger, newest first, `limit` entries a page. Pass the previous
    /// page's `nextCursor` to continue.
    public func ledger(_ id: AccountID, limit: Int = 50, cursor: String? = nil) async throws(TollgateError) -> LedgerPage {
        guard (1...10_000).contains(limit) else {
            throw TollgateError(.invalidArgument, "limit must be between 1 and 10000")
        }
        if let cursor, !LedgerEntry.isValidID(cursor) {
            throw TollgateError(.invalidArgument, "'\(cursor.prefix(40))' is not a ledger cursor")
        }
        let keys = AccountKeys(id)
        var command = RedisCommand("XREVRANGE")
        command.append(keys.ledger)
        command.append(cursor.map { "(" + $0 } ?? "+")
        command.append("-")
        command.append("COUNT")
        command.append(limit)
        guard try await send(RedisCommand(["EXISTS", keys.account])).int64 == 1 else {
            throw TollgateError(.accountNotFound, "no account '\(id)'")
        }
        let entries = try LedgerEntry.parse(streamEntries: try await send(command), account: id)
        return LedgerPage(entries: entries, nextCursor: entries.count == limit ? entries.last?.id : nil)
    }

    /// Entries oldest first, strictly after `after` (or from the start) up to `through`.
    func ledgerForward(_ id: AccountID, after: String?, through: String, count: Int) async throws(TollgateError) -> [LedgerEntry] {
        var command = RedisCommand("XRANGE")
        command.append(AccountKeys(id).ledger)
        command.append(after.map { "(" + $0 } ?? "-")
        command.append(through)
        command.append("COUNT")
        command.append(count)
        return try LedgerEntry.parse(streamEntries: try await send(command), account: id)
    }

    /// Sends a plain command, translating failures into `TollgateError`.
    func send(_ command: RedisCommand) async throws(TollgateError) -> RESPValue {
        do {
            return try await redis.send(command)
        } catch {
            throw TollgateError(error)
        }
    }
}

extension LedgerEntry {
    /// Whether text has the shape of an entry id (`<ms>-<n>`).
    static func isValidID(_ text: String) -> Bool {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        return parts.count == 2 && parts.allSatisfy { !$0.isEmpty && $0.count <= 20 && $0.allSatisfy(\.isASCIIDigit) }
    }

    /// Parses `XRANGE`/`XREVRANGE` output written by `append_ledger` in `lua/10_account.lua`.
    static func parse(streamEntries reply: RESPValue, account: AccountID) throws(TollgateError) -> [LedgerEntry] {
        guard let items = reply.array else {
            throw TollgateError(.redisError, "unexpected ledger reply: \(reply)")
        }
        var entries: [LedgerEntry] = []
        entries.reserveCapacity(items.count)
        for item in items {
            guard let pair = item.array, pair.count == 2, let id = pair[0].string, let flat = pair[1].array else {
                throw TollgateError(.redisError, "unexpected ledger entry: \(item)")
            }
            var fields: [String: String] = [:]
            var index = 0
            while index + 1 < flat.count {
                if let name = flat[index].string { fields[name] = flat[index + 1].string }
                index += 2
            }
            func money(_ name: String) -> Money? { fields[name].flatMap { Int64($0) }.flatMap(Money.init(micros:)) }
            guard let kind = fields["kind"].flatMap(LedgerKind.init(rawValue:)),
                  let amount = money("amount"), let balance = money("balance"),
                  let held = money("held"), let heldDelta = money("held_delta"),
                  let time = fields["time"].flatMap({ Int64($0) }) else {
                throw TollgateError(.redisError, "ledger entry \(id) is malformed: \(fields)")
            }
            let hold = fields["hold"].flatMap { Int64($0) }.map { HoldID(account: account, sequence: $0) }
            entries.append(LedgerEntry(
                id: id, kind: kind, amount: amount, balance: balance, held: held, heldDelta: heldDelta,
                time: time, requestID: fields["request_id"] ?? "", holdID: hold,
                meter: fields["meter"], model: fields["model"].flatMap { $0.isEmpty ? nil : $0 },
                quantity: fields["quantity"].flatMap { Int64($0) },
                keyID: fields["key"].flatMap { $0.isEmpty ? nil : $0 },
                reference: fields["ref"], expiresAt: fields["expires"].flatMap { Int64($0) },
                flag: fields["flag"], status: fields["status"]))
        }
        return entries
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
