import Foundation
import TollgateCore

extension CouponKey {
    /// The file of the data folder a generated coupon secret is kept in.
    public static func file(in directory: URL) -> URL {
        directory.appendingPathComponent("coupon.secret")
    }

    /// The coupon key from the given secret, else from the data folder's `coupon.secret`, else
    /// from a new secret kept there. The secret is never printed: the CLI reads the same file.
    public static func load(given: String?, directory: URL) throws -> (key: CouponKey, origin: KeptSecret.Origin) {
        let (secret, origin) = try KeptSecret.load(given: given, file: file(in: directory), generate: generateSecret)
        return (try CouponKey(secret: secret), origin)
    }
}
