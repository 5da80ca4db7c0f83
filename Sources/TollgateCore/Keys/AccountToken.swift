import TollgateRedis

extension Engine {
    private static func accountTokenKey(hash: String) -> String { "tg:acctok:" + hash }

    /// Creates a token that sees and acts on one account only (for its dashboard and its
    /// holder's calls). Returned once; Redis keeps only its SHA-256.
    public func createAccountToken(for account: AccountID) async throws(TollgateError) -> String {
        _ = try await self.account(account)
        let token = "tga_" + APIKeySecret.randomCharacters(40)
        _ = try await send(RedisCommand(["SET", Self.accountTokenKey(hash: APIKeySecret.hash(token)), account.rawValue]))
        return token
    }

    /// The account an account-scoped token belongs to, or nil when no such token exists.
    public func account(forToken token: String) async throws(TollgateError) -> AccountID? {
        guard token.hasPrefix("tga_"), token.utf8.count <= 128 else { return nil }
        let hash = APIKeySecret.hash(token)
        if let known = caches.accountTokens.withLock({ $0[hash] }) { return known }
        guard let raw = try await send(RedisCommand(["GET", Self.accountTokenKey(hash: hash)])).string,
              let account = try? AccountID(raw) else { return nil }
        caches.accountTokens.withLock { cache in
            if cache.count >= EngineCaches.maximumCachedKeys { cache.removeAll() }
            cache[hash] = account
        }
        return account
    }
}
