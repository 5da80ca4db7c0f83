/// An error from the payments layer outside webhooks: bad configuration, an amount that cannot
/// be converted, a token without a deposit address. A stable `code` and a `message` for people.
public struct PaymentsError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A stable, machine-readable error code such as `invalid_amount`.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        /// The code as written in JSON and logs.
        public let rawValue: String
        init(_ rawValue: String) { self.rawValue = rawValue }

        /// A decimal amount or rate that is malformed, negative, NaN or too precise.
        public static let invalidAmount = Code("invalid_amount")
        /// A converted amount beyond what `Money` holds (2^53 - 1 micro-credits).
        public static let amountOutOfRange = Code("amount_out_of_range")
        /// A token that is not in the token table.
        public static let unsupportedToken = Code("unsupported_token")
        /// A supported token for which no deposit address is configured.
        public static let noDepositAddress = Code("no_deposit_address")
        /// A deposit id that cannot be handed to a provider.
        public static let invalidDepositID = Code("invalid_deposit_id")
        /// A `TOLLGATE_*` setting that cannot be used.
        public static let invalidConfiguration = Code("invalid_configuration")

        public var description: String { rawValue }
    }

    /// What went wrong, for programs.
    public var code: Code
    /// What went wrong, for people. Never contains a secret.
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
