/// An error from Tollgate: a stable `code` for programs and a `message` for people.
public struct TollgateError: CodedError {
    /// A stable, machine-readable error code such as `account_not_found`.
    public typealias Code = ErrorCode<TollgateError>

    /// What went wrong, for programs.
    public var code: Code
    /// What went wrong, for people.
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
}

extension ErrorCode where Family == TollgateError {
    /// An amount that is not a valid decimal string of credits, or out of range.
    public static var invalidAmount: Self { Self("invalid_amount") }
    /// An argument that is malformed or out of range.
    public static var invalidArgument: Self { Self("invalid_argument") }
    /// A Lua step was given KEYS that are not one account's, in the order it takes them: a
    /// defect of the caller, refused before anything is read or written.
    public static var invalidKeys: Self { Self("invalid_keys") }
    /// The account does not exist.
    public static var accountNotFound: Self { Self("account_not_found") }
    /// An account with this id already exists.
    public static var accountExists: Self { Self("account_exists") }
    /// The account is closed.
    public static var accountClosed: Self { Self("account_closed") }
    /// The request id was already used for a different operation.
    public static var idempotencyConflict: Self { Self("idempotency_conflict") }
    /// No API key has this id.
    public static var keyNotFound: Self { Self("key_not_found") }
    /// The result would leave the range the engine can hold exactly (2^53 micro-credits).
    public static var amountOutOfRange: Self { Self("amount_out_of_range") }
    /// A coupon code was drawn twice (the engine draws again).
    public static var couponExists: Self { Self("coupon_exists") }
    /// The engine has no coupon secret (`Engine.couponKey`).
    public static var couponSecretMissing: Self { Self("coupon_secret_missing") }
    /// Redis holds coupons hashed with another secret than the one given.
    public static var couponSecretMismatch: Self { Self("coupon_secret_mismatch") }
    /// No deposit has this id.
    public static var depositNotFound: Self { Self("deposit_not_found") }
    /// A deposit id was taken.
    public static var depositExists: Self { Self("deposit_exists") }
    /// The account started as many deposits in 24 hours as it may (`lua/55_billing.lua`).
    public static var tooManyDeposits: Self { Self("too_many_deposits") }
    /// The ledger changed before the archive's cut after it was exported; nothing removed.
    public static var archiveMismatch: Self { Self("archive_mismatch") }
    /// The asked range starts before entries that were archived out of Redis.
    public static var rangeArchived: Self { Self("range_archived") }
    /// Redis could not be reached, or did not answer in time.
    public static var redisUnavailable: Self { Self("redis_unavailable") }
    /// Redis answered with an error or an unexpected reply.
    public static var redisError: Self { Self("redis_error") }
}

extension TollgateError {
    /// Translates a Redis failure: connectivity problems become `redis_unavailable`, error
    /// replies of Tollgate's Lua (`TOLLGATE <code> <message>`) keep their code.
    init(_ error: RedisError) {
        if error.isConnectivity || error.code == .clientClosed {
            self.init(.redisUnavailable, error.message)
        } else if error.code == .serverError {
            self.init(serverReply: error.message)
        } else {
            self.init(.redisError, error.description)
        }
    }

    init(serverReply message: String) {
        // Redis cannot run commands right now (replaying its AOF after a restart, a script
        // running too long, a cluster or replica not ready): the command did not run, and the
        // caller may try again, as when Redis is unreachable.
        if ["LOADING ", "BUSY ", "MASTERDOWN ", "TRYAGAIN ", "CLUSTERDOWN "].contains(where: message.hasPrefix) {
            self.init(.redisUnavailable, message)
            return
        }
        let prefix = "TOLLGATE "
        guard message.hasPrefix(prefix) else {
            self.init(.redisError, message)
            return
        }
        var rest = message.dropFirst(prefix.count)
        // Redis appends where a Lua error was raised (" script: NAME, on @user_function:N.").
        if let location = rest.range(of: " script: ") { rest = rest[..<location.lowerBound] }
        let code = rest.prefix { $0 != " " }
        let text = rest.dropFirst(code.count).drop { $0 == " " }
        self.init(Code(String(code)), String(text))
    }
}

import TollgateRedis
