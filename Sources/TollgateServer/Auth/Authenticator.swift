import HTTPTypes
import Hummingbird
import TollgateCore

/// Who is calling, from the `Authorization: Bearer TOKEN` header.
public enum Caller: Sendable, Hashable {
    /// The operator: every admin route.
    case admin
    /// A gateway: authorize, holds, check.
    case service
    /// An account-scoped token: reads (and later acts) on one account only.
    case account(AccountID)
}

/// Checks bearer tokens: the admin and service tokens by constant-time comparison of their
/// SHA-256 digests, account tokens by lookup. Never logs a token.
struct Authenticator: Sendable {
    private let adminDigest: [UInt8]
    private let serviceDigest: [UInt8]
    let engine: Engine
    /// Bounds account tokens on the metered routes (`Access.adminOrOwnerMetered`).
    let quota: AccountTokenQuota

    init(adminToken: String, serviceToken: String, engine: Engine, quota: AccountTokenQuota = AccountTokenQuota()) {
        adminDigest = Array(APIKeySecret.hash(adminToken).utf8)
        serviceDigest = Array(APIKeySecret.hash(serviceToken).utf8)
        self.engine = engine
        self.quota = quota
    }

    /// The caller a token belongs to, or nil for an unknown token.
    func caller(token: String) async throws -> Caller? {
        let digest = Array(APIKeySecret.hash(token).utf8)
        if Self.constantTimeEquals(digest, adminDigest) { return .admin }
        if Self.constantTimeEquals(digest, serviceDigest) { return .service }
        do {
            return try await engine.account(forToken: token).map(Caller.account)
        } catch {
            throw APIError(error)
        }
    }

    /// Whether `token` is the admin or the service token (a local comparison, no Redis).
    func isOperatorToken(_ token: String) -> Bool {
        let digest = Array(APIKeySecret.hash(token).utf8)
        return Self.constantTimeEquals(digest, adminDigest) || Self.constantTimeEquals(digest, serviceDigest)
    }

    /// The caller of a request; 401 without a known bearer token.
    func caller(of request: Request) async throws -> Caller {
        guard let token = Self.bearer(request.headers[.authorization]), let caller = try await caller(token: token) else {
            throw APIError.unauthorized
        }
        return caller
    }

    /// The caller `access` admits for this request: 401 without a known bearer token, 403 for
    /// one the rule does not admit; nil for rules that take no bearer token. The caller is known
    /// (401) before the account id in the path is read (400), so a caller without a token
    /// learns nothing from the path.
    ///
    /// On a metered route an account token's call also counts against its quota (429
    /// `rate_limited` past it); the admin's do not.
    func admit(_ request: Request, _ context: some RequestContext, to access: Access) async throws -> Caller? {
        switch access {
        case .open, .routeCredential: return nil
        case .anyToken, .admin, .service, .adminOrOwner, .adminOrOwnerMetered: break
        }
        let caller = try await caller(of: request)
        let pathAccount: AccountID?
        switch access {
        case .adminOrOwner, .adminOrOwnerMetered: pathAccount = try PathParameter.account(context)
        default: pathAccount = nil
        }
        guard access.admits(caller, pathAccount: pathAccount) else { throw APIError.forbidden }
        if access == .adminOrOwnerMetered, caller != .admin, let token = Self.bearer(request.headers[.authorization]) {
            try quota.admit(APIKeySecret.hash(token))
        }
        return caller
    }

    static func bearer(_ header: String?) -> String? {
        guard let header, header.count > 7, header.prefix(7).lowercased() == "bearer " else { return nil }
        let token = header.dropFirst(7).trimmingCharacters(in: .whitespaces)
        return token.isEmpty ? nil : token
    }

    /// Compares equal-length digests without stopping at the first difference.
    static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}

import Foundation
