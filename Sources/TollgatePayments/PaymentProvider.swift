import Foundation

/// A payment provider that sells crypto to an account holder and pays it to our deposit address,
/// then confirms by a signed webhook.
///
/// Each conforming type states next to itself which documents it follows and what it assumes.
/// Implementations are pure values: no I/O, no clock of their own (the caller passes `now`).
public protocol PaymentProvider: Sendable {
    /// The name in URLs and configuration: `moonpay`, `alchemypay`.
    var name: String { get }

    /// Whether webhooks can be verified (the provider's secret is configured). When `false`,
    /// `verifyWebhook` always throws `not_configured`.
    var isWebhookConfigured: Bool { get }

    /// The URL that opens the provider's checkout for this deposit, with our deposit id in it so
    /// the webhook can name it.
    func checkoutURL(for deposit: DepositCheckout) -> String

    /// Authenticates a webhook and reads it.
    ///
    /// - Parameters:
    ///   - headers: the request headers, names lowercased.
    ///   - body: the raw request body, byte for byte as received.
    ///   - now: the current time, for the timestamp tolerance.
    func verifyWebhook(headers: [String: String], body: [UInt8], now: Date) throws(WebhookError) -> WebhookEvent
}

/// One deposit as handed to a provider's checkout.
public struct DepositCheckout: Sendable, Hashable {
    /// Our deposit id; the provider sends it back in the webhook. Letters, digits and `-_.:`
    /// only, 1 to 48 bytes (AlchemyPay's `merchantOrderNo` limit), so it needs no escaping
    /// anywhere.
    public var depositID: String
    /// The amount of `token` requested.
    public var amount: DecimalAmount
    /// The token symbol, such as `USDT`.
    public var token: String
    /// The network the token is paid on.
    public var network: PaymentNetwork
    /// The address that receives it.
    public var address: String
    /// When the deposit was created; AlchemyPay signs it into the URL.
    public var createdAt: Date

    /// Checks the deposit id.
    public init(
        depositID: String, amount: DecimalAmount, token: String, network: PaymentNetwork, address: String,
        createdAt: Date
    ) throws(PaymentsError) {
        try Self.validate(depositID: depositID)
        self.depositID = depositID
        self.amount = amount
        self.token = token
        self.network = network
        self.address = address
        self.createdAt = createdAt
    }

    /// Refuses ids a provider could not carry unchanged.
    public static func validate(depositID: String) throws(PaymentsError) {
        let bytes = Array(depositID.utf8)
        guard !bytes.isEmpty, bytes.count <= 48 else {
            throw PaymentsError(.invalidDepositID, "a deposit id must be 1 to 48 bytes (got \(bytes.count))")
        }
        let allowed: (UInt8) -> Bool = { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
                UInt8(ascii: ":"):
                true
            default: false
            }
        }
        guard bytes.allSatisfy(allowed) else {
            throw PaymentsError(.invalidDepositID, "a deposit id may hold only letters, digits and -_.:")
        }
    }
}
