/// An error from Tollgate: a stable `code` for programs and a `message` for people.
public struct TollgateError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A stable, machine-readable error code such as `account_not_found`.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        /// The code as written in JSON and CLI output.
        public let rawValue: String
        init(_ rawValue: String) { self.rawValue = rawValue }

        /// An amount that is not a valid decimal string of credits, or out of range.
        public static let invalidAmount = Code("invalid_amount")
        /// An argument that is malformed or out of range.
        public static let invalidArgument = Code("invalid_argument")
        /// The account does not exist.
        public static let accountNotFound = Code("account_not_found")
        /// An account with this id already exists.
        public static let accountExists = Code("account_exists")
        /// The account is closed.
        public static let accountClosed = Code("account_closed")
        /// The request id was already used for a different operation.
        public static let idempotencyConflict = Code("idempotency_conflict")
        /// No API key has this id.
        public static let keyNotFound = Code("key_not_found")
        /// The result would leave the range the engine can hold exactly (2^53 micro-credits).
        public static let amountOutOfRange = Code("amount_out_of_range")
        /// A coupon code was drawn twice (the engine draws again).
        public static let couponExists = Code("coupon_exists")
        /// No deposit has this id.
        public static let depositNotFound = Code("deposit_not_found")
        /// A deposit id was taken.
        public static let depositExists = Code("deposit_exists")
        /// The ledger changed before the archive's cut after it was exported; nothing removed.
        public static let archiveMismatch = Code("archive_mismatch")
        /// The asked range starts before entries that were archived out of Redis.
        public static let rangeArchived = Code("range_archived")
        /// Redis could not be reached, or did not answer in time.
        public static let redisUnavailable = Code("redis_unavailable")
        /// Redis answered with an error or an unexpected reply.
        public static let redisError = Code("redis_error")

        public var description: String { rawValue }
    }

    /// What went wrong, for programs.
    public var code: Code
    /// What went wrong, for people.
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
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
