import TollgateRedis

extension Engine {
    private static func keyIndexKey(hash: String) -> String { "tg:keyidx:" + hash }
    private static func keyAccountKey(_ id: KeyID) -> String { "tg:keyid:" + id.rawValue }

    /// Creates an API key for an account. The secret is in the result and nowhere else.
    public func createKey(for account: AccountID) async throws(TollgateError) -> CreatedKey {
        let id = KeyID.random()
        let secret = APIKeySecret.generate()
        let hash = APIKeySecret.hash(secret)
        // The key lives in its account's slot first; the global indexes make it findable.
        _ = try await step("key_create", account, nil, [id.rawValue, hash])
        _ = try await send(RedisCommand(["SET", Self.keyAccountKey(id), account.rawValue]))
        _ = try await send(RedisCommand(["SET", Self.keyIndexKey(hash: hash), id.rawValue + "\n" + account.rawValue]))
        return CreatedKey(keyID: id, account: account, secret: secret)
    }

    /// The account an API key belongs to.
    public func account(of key: KeyID) async throws(TollgateError) -> AccountID {
        let reply = try await send(RedisCommand(["GET", Self.keyAccountKey(key)]))
        guard let raw = reply.string else { throw TollgateError(.keyNotFound, "no API key \(key)") }
        return try AccountID(raw)
    }

    /// Revokes an API key: it is refused from the next call on, everywhere.
    public func revokeKey(_ key: KeyID) async throws(TollgateError) {
        _ = try await step("key_revoke", try await account(of: key), nil, [key.rawValue])
    }

    /// Every API key of an account (never their secrets).
    public func keys(of account: AccountID) async throws(TollgateError) -> [KeySummary] {
        let reply = try await send(RedisCommand(["HGETALL", AccountKeys(account).account]))
        guard let flat = reply.array else { throw TollgateError(.redisError, "unexpected account reply") }
        guard !flat.isEmpty else { throw TollgateError(.accountNotFound, "no account '\(account)'") }
        var byKey: [String: [String: String]] = [:]
        var index = 0
        while index + 1 < flat.count {
            if let field = flat[index].string, field.hasPrefix("k:"), let value = flat[index + 1].string {
                let rest = field.dropFirst(2)
                if let colon = rest.firstIndex(of: ":") {
                    byKey[String(rest[..<colon]), default: [:]][String(rest[rest.index(after: colon)...])] = value
                }
            }
            index += 2
        }
        return byKey.compactMap { rawID, fields -> KeySummary? in
            guard let id = try? KeyID(rawID), let status = fields["status"] else { return nil }
            var limits: [LimitName: Int64] = [:]
            for name in LimitName.allCases {
                if let value = fields["lim:" + name.rawValue].flatMap({ Int64($0) }) { limits[name] = value }
            }
            return KeySummary(keyID: id, account: account, status: status,
                              created: fields["created"].flatMap { Int64($0) } ?? 0, limits: limits)
        }.sorted { $0.keyID < $1.keyID }
    }

    /// The limits set on an account (its keys' are in `keys(of:)`).
    public func limits(of account: AccountID) async throws(TollgateError) -> [LimitName: Int64] {
        var command = RedisCommand("HMGET")
        command.append(AccountKeys(account).account)
        for name in LimitName.allCases { command.append("lim:" + name.rawValue) }
        let values = try await send(command).array ?? []
        var limits: [LimitName: Int64] = [:]
        for (name, value) in zip(LimitName.allCases, values) {
            if let number = value.int64 { limits[name] = number }
        }
        return limits
    }

    /// Sets or removes limits on an account or an API key.
    public func setLimits(_ scope: LimitScope, _ update: LimitsUpdate) async throws(TollgateError) {
        guard !update.isEmpty else { throw TollgateError(.invalidArgument, "name at least one limit to set") }
        var arguments: [String] = []
        let account: AccountID
        switch scope {
        case .account(let id):
            account = id
            arguments.append("account")
        case .key(let key):
            account = try await self.account(of: key)
            arguments.append(key.rawValue)
        }
        for (name, value) in update.changes.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            arguments.append(name.rawValue)
            arguments.append(value.map(String.init) ?? "")
        }
        _ = try await step("limits_set", account, nil, arguments)
    }

    /// The active API key with this secret and its account, or nil when no key has it or it
    /// was revoked. A read: nothing is charged or counted (for routes that need a caller's key
    /// but decide nothing, such as the OpenAI proxy's model list).
    public func activeKey(secret: String) async throws(TollgateError) -> (key: KeyID, account: AccountID)? {
        guard secret.utf8.count <= 256, let resolved = try await resolve(secret: secret) else { return nil }
        let fields = try await send(RedisCommand([
            "HMGET", AccountKeys(resolved.account).account, "k:\(resolved.key.rawValue):status", "k:\(resolved.key.rawValue):hash",
        ])).array ?? []
        guard fields.count == 2, fields[0].string == "active", fields[1].string == resolved.hash else { return nil }
        return (resolved.key, resolved.account)
    }

    /// The key id and account of a secret, or nil when no key has it.
    func resolve(secret: String) async throws(TollgateError) -> (hash: String, key: KeyID, account: AccountID)? {
        let hash = APIKeySecret.hash(secret)
        if let known = caches.keys.withLock({ $0[hash] }) { return (hash, known.0, known.1) }
        let reply = try await send(RedisCommand(["GET", Self.keyIndexKey(hash: hash)]))
        guard let stored = reply.string, let newline = stored.firstIndex(of: "\n"),
              let key = try? KeyID(String(stored[..<newline])),
              let account = try? AccountID(String(stored[stored.index(after: newline)...])) else { return nil }
        caches.keys.withLock { cache in
            if cache.count >= EngineCaches.maximumCachedKeys { cache.removeAll() }
            cache[hash] = (key, account)
        }
        return (hash, key, account)
    }
}
