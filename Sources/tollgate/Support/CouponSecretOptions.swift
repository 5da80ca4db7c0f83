import ArgumentParser
import Foundation
import TollgateCore
import TollgateServer

/// Where the coupon secret comes from, for commands that create or redeem coupons beside a
/// server: the flag, then `TOLLGATE_COUPON_SECRET`, then the server's data folder. Redis keeps
/// the secret's fingerprint, so a command with another secret is refused, never half-working.
struct CouponSecretOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "The secret coupon codes are hashed with (at least 16 characters).",
        discussion: "Defaults to TOLLGATE_COUPON_SECRET, else the server's, kept in DATA_DIR/coupon.secret (generated there when missing).",
        valueName: "secret"))
    var couponSecret: String?

    @Option(help: ArgumentHelp("The server's data folder (TOLLGATE_DATA_DIR; default .tollgate).", valueName: "path"))
    var dataDir: String?

    /// The coupon key these options name.
    func couponKey() throws -> CouponKey {
        let environment = ProcessInfo.processInfo.environment
        let directory = URL(fileURLWithPath: try ServeSettings.dataDir.required(dataDir, environment), isDirectory: true)
        return try CouponKey.load(given: try ServeSettings.couponSecret.value(couponSecret, environment), directory: directory).key
    }

    /// A ready engine that hashes coupon codes with this secret.
    func engine(_ options: EngineOptions) async throws -> Engine {
        var engine = try await options.engine()
        engine.couponKey = try couponKey()
        try await engine.prepareCoupons()
        return engine
    }
}
