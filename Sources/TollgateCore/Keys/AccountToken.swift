import TollgateRedis

/// An account-scoped token as the operator sees it after creation: its id, never its secret.
public struct AccountTokenSummary: Sendable, Hashable, Encodable {
    /// `tok_` and the token's SHA-256: names the token without revealing it.
    public let tokenID: String
    /// When it was made (ms since the epoch).
    public let created: Int64

    enum CodingKeys: String, CodingKey {
        case tokenID = "token_id", created
    }
}

/// A token just made: the secret, shown only now, and its id for revoking it later.
public struct CreatedAccountToken: Sendable, Hashable, Encodable {
    public let account: AccountID
    public let tokenID: String
    public let token: String

    enum CodingKeys: String, CodingKey {
        case account, tokenID = "token_id", token
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(account.rawValue, forKey: .account)
        try container.encode(tokenID, forKey: .tokenID)
        try container.encode(token, forKey: .token)
    }
}

extension ErrorCode where Family == TollgateError {
    /// No token of this account has this id (never made, or already revoked).
    public static var tokenNotFound: Self { Self("token_not_found") }
}

/// Account-scoped tokens. Redis keeps `tg:acctok:<sha256>` → account id, and per account an
/// index of its tokens (`tokens` beside its other keys) so they can be listed and revoked.
/// A token's id is `tok_` and that SHA-256: knowing the id does not give the token (206 random
/// bits), and a token's id follows from the token, so one found leaked can be revoked by value.
///
/// Lookups are not cached: a revocation is a `DEL` that every server sees at its next lookup,
/// and a stream opened with the token re-checks it (`accountTokenRecheckInterval`).
extension Engine {
    private static func accountTokenKey(hash: String) -> String { "tg:acctok:" + hash }
    private static let tokenIDPrefix = "tok_"

    /// How often a live stream opened with an account token checks that it was not revoked.
    public static let accountTokenRecheckInterval: Duration = .seconds(1)

    /// The id of a token (`tok_` + SHA-256), for revoking it by value.
    public static func accountTokenID(of token: String) -> String { tokenIDPrefix + APIKeySecret.hash(token) }

    /// Creates a token that sees and acts on one account only (for its dashboard and its
    /// holder's calls). Returned once; Redis keeps only its SHA-256.
    public func createAccountToken(for account: AccountID) async throws(TollgateError) -> CreatedAccountToken {
        _ = try await self.account(account)
        let token = "tga_" + APIKeySecret.randomCharacters(40)
        let hash = APIKeySecret.hash(token)
        // Indexed first: a token that exists is always one that can be listed and revoked.
        _ = try await send(RedisCommand(["HSET", AccountKeys(account).tokens, hash, String(clock.nowMilliseconds())]))
        _ = try await send(RedisCommand(["SET", Self.accountTokenKey(hash: hash), account.rawValue]))
        return CreatedAccountToken(account: account, tokenID: Self.tokenIDPrefix + hash, token: token)
    }

    /// The account's tokens, oldest first.
    public func accountTokens(of account: AccountID) async throws(TollgateError) -> [AccountTokenSummary] {
        _ = try await self.account(account)
        let flat = try await send(RedisCommand(["HGETALL", AccountKeys(account).tokens])).array ?? []
        var tokens: [AccountTokenSummary] = []
        var index = 0
        while index + 1 < flat.count {
            if let hash = flat[index].string, let created = flat[index + 1].string.flatMap({ Int64($0) }) {
                tokens.append(AccountTokenSummary(tokenID: Self.tokenIDPrefix + hash, created: created))
            }
            index += 2
        }
        return tokens.sorted { ($0.created, $0.tokenID) < ($1.created, $1.tokenID) }
    }

    /// Revokes one token of the account: refused from the next request on, on every server.
    /// `token_not_found` when the account has no such token.
    public func revokeAccountToken(_ tokenID: String, of account: AccountID) async throws(TollgateError) {
        guard tokenID.hasPrefix(Self.tokenIDPrefix), tokenID.utf8.count == Self.tokenIDPrefix.utf8.count + 64 else {
            throw TollgateError(.invalidArgument, "'\(tokenID.prefix(80))' is not a token id (tok_ and 64 hex digits)")
        }
        let hash = String(tokenID.dropFirst(Self.tokenIDPrefix.count))
        let key = Self.accountTokenKey(hash: hash)
        // A token of another account is not this account's to revoke.
        // No index entry is removed here: one whose token is not (yet) there may belong to a
        // token being created right now, whose key is written just after its index entry.
        guard let owner = try await send(RedisCommand(["GET", key])).string,
              Array(owner.utf8) == Array(account.rawValue.utf8) else {
            throw TollgateError(.tokenNotFound, "account '\(account)' has no token \(tokenID)")
        }
        _ = try await send(RedisCommand(["DEL", key]))
        _ = try await send(RedisCommand(["HDEL", AccountKeys(account).tokens, hash]))
    }

    /// Revokes every token of the account; returns how many it revoked. Tokens made before
    /// the index was kept are in no index: for them this scans the token keys (`SCAN`, the
    /// whole keyspace; a rare operator action).
    public func revokeAccountTokens(of account: AccountID) async throws(TollgateError) -> Int {
        var hashes = Set(try await accountTokens(of: account).map { String($0.tokenID.dropFirst(Self.tokenIDPrefix.count)) })
        let prefix = Self.accountTokenKey(hash: "")
        let keys: [String]
        do {
            keys = try await redis.scanKeys(matching: prefix + "*")
        } catch {
            throw TollgateError(error)
        }
        for key in keys {
            if let owner = try await send(RedisCommand(["GET", key])).string, Array(owner.utf8) == Array(account.rawValue.utf8) {
                hashes.insert(String(key.dropFirst(prefix.count)))
            }
        }
        var revoked = 0
        for hash in hashes.sorted() {
            do {
                try await revokeAccountToken(Self.tokenIDPrefix + hash, of: account)
                revoked += 1
            } catch where error.code == .tokenNotFound {
                _ = try await send(RedisCommand(["HDEL", AccountKeys(account).tokens, hash]))
            }
        }
        return revoked
    }

    /// The account an account-scoped token belongs to, or nil when no such token exists (or
    /// it was revoked).
    public func account(forToken token: String) async throws(TollgateError) -> AccountID? {
        guard token.hasPrefix("tga_"), token.utf8.count <= 128 else { return nil }
        guard let raw = try await send(RedisCommand(["GET", Self.accountTokenKey(hash: APIKeySecret.hash(token))])).string else {
            return nil
        }
        return try? AccountID(raw)
    }
}
