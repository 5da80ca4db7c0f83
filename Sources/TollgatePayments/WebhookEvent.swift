/// What an authenticated provider webhook says about one deposit.
public struct WebhookEvent: Sendable, Hashable {
    /// What happened to the payment.
    public enum Status: Sendable, Hashable {
        /// The payment is done: credit `amount` (a decimal string exactly as the provider sent
        /// it, convert it with `TokenTable`) of `currency` (the provider's currency code, such as
        /// MoonPay's `usdt_trx` or AlchemyPay's `USDT`; `TokenTable.symbol(forProviderCurrency:)`
        /// turns it into a token symbol).
        case completed(amount: String, currency: String)
        /// The payment failed: mark the deposit failed.
        case failed
        /// Any other status or event (pending, created, fiat paid but crypto not yet sent...):
        /// acknowledge and change nothing. The text names what was received.
        case other(String)
    }

    /// The provider's name, as in `PaymentProvider.name`.
    public var provider: String
    /// Our deposit id, which the checkout URL handed to the provider. Never empty for
    /// `.completed` and `.failed`; may be empty for `.other`.
    public var depositID: String
    /// The provider's id of the transaction: the key that makes crediting idempotent. Never
    /// empty for `.completed` and `.failed`; may be empty for `.other`.
    public var providerTransactionID: String
    /// What happened.
    public var status: Status
    /// Where the provider says it sent the crypto (MoonPay `data.walletAddress`, AlchemyPay
    /// `address`), when it says. A completed payment is credited only if this is the deposit's
    /// own receive address: anyone can open a provider's widget with our deposit id and their
    /// own wallet.
    public var destination: String?

    public init(provider: String, depositID: String, providerTransactionID: String, status: Status, destination: String? = nil) {
        self.provider = provider
        self.depositID = depositID
        self.providerTransactionID = providerTransactionID
        self.status = status
        self.destination = destination
    }
}
