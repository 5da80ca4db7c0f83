import Crypto

/// The server secret coupon codes are hashed with. Redis keeps a code only as
/// HMAC-SHA256(secret, SHA-256(normalized code)): without the secret, a copy of the data
/// (an RDB, a replica, a backup) does not let anyone test candidate codes offline.
///
/// The inner SHA-256 is what earlier versions stored unkeyed, so stored coupons are moved to
/// the keyed form without knowing their codes (`Engine.prepareCoupons()`). Redis keeps a
/// fingerprint of the secret (`tg:coupon:key`), so a server started with another secret is
/// refused instead of calling every code invalid.
public struct CouponKey: Sendable {
    /// The secret's bytes (a `SymmetricKey` is made per use: it is not `Sendable`).
    private let secret: [UInt8]
    /// Identifies the secret without revealing it: HMAC of a fixed label.
    public let fingerprint: String

    /// The shortest secret accepted, in bytes.
    public static let minimumLength = 16

    public init(secret: String) throws(TollgateError) {
        guard secret.utf8.count >= Self.minimumLength else {
            throw TollgateError(.invalidArgument, "a coupon secret is at least \(Self.minimumLength) characters")
        }
        self.secret = Array(secret.utf8)
        fingerprint = String(Self.mac(Array("tollgate coupon key".utf8), self.secret).prefix(32))
    }

    /// A new random secret: `tgcpn_` and 40 random letters and digits (about 206 bits).
    public static func generateSecret() -> String {
        "tgcpn_" + APIKeySecret.randomCharacters(40)
    }

    /// The stored hash of a code, matched after normalizing it (`CouponCode.normalize`).
    func hash(code: String) -> String {
        hash(unkeyed: APIKeySecret.hash(CouponCode.normalize(code)))
    }

    /// The stored hash of a coupon kept by an earlier version as its plain SHA-256.
    func hash(unkeyed: String) -> String {
        Self.mac(Array(unkeyed.utf8), secret)
    }

    /// The random numbers code `index` of batch `batch` is drawn with: keyed, so only the
    /// secret's holder can draw a batch's codes again (a retry of its creation does).
    func codeGenerator(batch: String, index: Int) -> SeededGenerator {
        let message = Array("coupon code\u{0}\(batch)\u{0}\(index)".utf8)
        return SeededGenerator(seed: Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: secret))))
    }

    /// What a coupon record keeps of the batch it was made in: the batch (`request`), and the
    /// batch with what it was asked to make (`operation`). Keyed, so they reveal neither.
    func batchFingerprints(batch: String, operation: String) -> (request: String, operation: String) {
        (String(Self.mac(Array("coupon batch\u{0}\(batch)".utf8), secret).prefix(32)),
         String(Self.mac(Array("coupon batch\u{0}\(batch)\u{0}\(operation)".utf8), secret).prefix(32)))
    }

    private static func mac(_ message: [UInt8], _ secret: [UInt8]) -> String {
        hex(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: secret)))
    }
}
