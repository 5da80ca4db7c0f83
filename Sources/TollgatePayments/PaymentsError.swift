import TollgateCore

/// An error from the payments layer outside webhooks: bad configuration, an amount that cannot
/// be converted, a token without a deposit address. A stable `code` and a `message` for people.
public struct PaymentsError: CodedError {
    /// A stable, machine-readable error code.
    public typealias Code = ErrorCode<PaymentsError>

    /// What went wrong, for programs.
    public var code: Code
    /// What went wrong, for people. Never contains a secret.
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
}

extension ErrorCode where Family == PaymentsError {
    /// A decimal amount or rate that is malformed, negative, NaN or too precise.
    public static var invalidAmount: Self { Self("invalid_amount") }
    /// A converted amount beyond what `Money` holds (2^53 - 1 micro-credits).
    public static var amountOutOfRange: Self { Self("amount_out_of_range") }
    /// A token that is not in the token table.
    public static var unsupportedToken: Self { Self("unsupported_token") }
    /// A supported token for which no deposit address is configured.
    public static var noDepositAddress: Self { Self("no_deposit_address") }
    /// A deposit id that cannot be handed to a provider.
    public static var invalidDepositID: Self { Self("invalid_deposit_id") }
    /// A `TOLLGATE_*` setting that cannot be used.
    public static var invalidConfiguration: Self { Self("invalid_configuration") }
}
