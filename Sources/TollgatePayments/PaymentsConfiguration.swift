import Foundation
import TollgateCore

/// Everything the payments layer is configured with: tokens and rates, where each token is
/// received, and the providers.
///
/// Read from the environment by `init(environment:)`:
///
/// | variable | meaning | default |
/// | --- | --- | --- |
/// | `TOLLGATE_TOKENS` | `SYMBOL=RATE,...` credits per token unit | `USDT=1,USDC=1` |
/// | `TOLLGATE_DEPOSIT_ADDRESS_<TOKEN>` | `NETWORK:ADDRESS` receiving that token | none |
/// | `TOLLGATE_MOONPAY_URL` | buy widget base URL | `https://buy.moonpay.com` |
/// | `TOLLGATE_MOONPAY_API_KEY` | publishable key (`pk_...`) | none (omitted from URLs) |
/// | `TOLLGATE_MOONPAY_SECRET_KEY` | signs widget URLs (`sk_...`) | none (unsigned URLs) |
/// | `TOLLGATE_MOONPAY_WEBHOOK_KEY` | verifies webhooks | none (webhooks refused) |
/// | `TOLLGATE_ALCHEMYPAY_URL` | ramp page base URL | `https://ramp.alchemypay.org` |
/// | `TOLLGATE_ALCHEMYPAY_APP_ID` | appId | none |
/// | `TOLLGATE_ALCHEMYPAY_APP_SECRET` | signs URLs, verifies webhooks | none (unsigned URLs, webhooks refused) |
/// | `TOLLGATE_ALCHEMYPAY_CALLBACK_PATH` | path of the callbackUrl, which AlchemyPay signs | `/v1/webhooks/alchemypay` |
///
/// An empty value counts as unset. With nothing set, checkout URLs and the token table work
/// for a local demo, deposits need an address per token, and both providers' webhooks answer
/// `not_configured`.
public struct PaymentsConfiguration: Sendable {
    /// Supported tokens and their rates.
    public var tokens: TokenTable
    /// The receiving address of each token that has one, by uppercase symbol.
    public var depositAddresses: [String: DepositAddress]
    /// MoonPay.
    public var moonPay: MoonPayProvider
    /// AlchemyPay.
    public var alchemyPay: AlchemyPayProvider

    /// A configuration from parts; every deposit address must name a token of `tokens`.
    public init(
        tokens: TokenTable = .default, depositAddresses: [DepositAddress] = [],
        moonPay: MoonPayProvider = MoonPayProvider(), alchemyPay: AlchemyPayProvider = AlchemyPayProvider()
    ) throws(PaymentsError) {
        var addresses: [String: DepositAddress] = [:]
        for address in depositAddresses {
            guard tokens.token(address.token) != nil else {
                throw PaymentsError(
                    .invalidConfiguration,
                    "TOLLGATE_DEPOSIT_ADDRESS_\(address.token) names a token missing from TOLLGATE_TOKENS (\(tokens.symbols))")
            }
            guard addresses[address.token] == nil else {
                throw PaymentsError(.invalidConfiguration, "two deposit addresses for \(address.token)")
            }
            addresses[address.token] = address
        }
        self.tokens = tokens
        self.depositAddresses = addresses
        self.moonPay = moonPay
        self.alchemyPay = alchemyPay
    }

    /// Reads the `TOLLGATE_*` variables in the table above; throws `invalid_configuration` with
    /// the variable's name for a value that cannot be used.
    public init(environment: [String: String]) throws(PaymentsError) {
        func value(_ name: String) -> String? {
            guard let text = environment[name]?.trimmingSpaces, !text.isEmpty else { return nil }
            return text
        }
        func url(_ name: String, default defaultValue: String) throws(PaymentsError) -> String {
            guard let text = value(name) else { return defaultValue }
            guard text.hasPrefix("https://") || text.hasPrefix("http://"), !text.contains("?"), !text.contains("#"),
                !text.contains(" ")
            else {
                throw PaymentsError(.invalidConfiguration, "\(name) must be an http(s) URL without query or fragment")
            }
            return text
        }
        let tokens = try value("TOLLGATE_TOKENS").map { text throws(PaymentsError) in try TokenTable(parsing: text) }
            ?? .default
        let prefix = "TOLLGATE_DEPOSIT_ADDRESS_"
        var addresses: [DepositAddress] = []
        for (name, _) in environment.sorted(by: { $0.key < $1.key }) where name.hasPrefix(prefix) {
            guard let spec = value(name) else { continue }
            let token = String(name.dropFirst(prefix.count)).uppercased()
            guard TokenTable.isValidSymbol(token) else {
                throw PaymentsError(.invalidConfiguration, "\(name) does not end in a token symbol")
            }
            do {
                addresses.append(try DepositAddress(token: token, parsing: spec))
            } catch {
                throw error.message.contains(name) ? error : PaymentsError(error.code, "\(name): \(error.message)")
            }
        }
        let callbackPath = value("TOLLGATE_ALCHEMYPAY_CALLBACK_PATH") ?? AlchemyPayProvider.defaultCallbackPath
        guard callbackPath.hasPrefix("/"), !callbackPath.contains(" ") else {
            throw PaymentsError(.invalidConfiguration, "TOLLGATE_ALCHEMYPAY_CALLBACK_PATH must be a path starting with /")
        }
        try self.init(
            tokens: tokens, depositAddresses: addresses,
            moonPay: MoonPayProvider(
                baseURL: try url("TOLLGATE_MOONPAY_URL", default: MoonPayProvider.defaultBaseURL),
                apiKey: value("TOLLGATE_MOONPAY_API_KEY"), secretKey: value("TOLLGATE_MOONPAY_SECRET_KEY"),
                webhookKey: value("TOLLGATE_MOONPAY_WEBHOOK_KEY")),
            alchemyPay: AlchemyPayProvider(
                baseURL: try url("TOLLGATE_ALCHEMYPAY_URL", default: AlchemyPayProvider.defaultBaseURL),
                appID: value("TOLLGATE_ALCHEMYPAY_APP_ID"), appSecret: value("TOLLGATE_ALCHEMYPAY_APP_SECRET"),
                callbackPath: callbackPath))
    }

    /// Every provider, in a stable order.
    public var providers: [any PaymentProvider] { [moonPay, alchemyPay] }

    /// The provider named `name` (`moonpay`, `alchemypay`; case-insensitive), or `nil` for an
    /// unknown name. A provider without its secret is still returned: its checkout URLs work
    /// (unsigned) and its webhooks throw `not_configured`.
    public func provider(named name: String) -> (any PaymentProvider)? {
        switch name.lowercased() {
        case moonPay.name: moonPay
        case alchemyPay.name: alchemyPay
        default: nil
        }
    }

    /// A checkout for depositing `amount` (a plain decimal string of token units, above zero)
    /// of `token` to its configured address.
    ///
    /// Throws `invalid_amount`, `unsupported_token`, `no_deposit_address`, `invalid_deposit_id`.
    public func checkout(
        depositID: String, amount: String, token: String, createdAt: Date
    ) throws(PaymentsError) -> DepositCheckout {
        let parsed = try DecimalAmount(parsing: amount)
        guard !parsed.isZero else { throw PaymentsError(.invalidAmount, "a deposit amount must be above zero") }
        guard let supported = tokens.token(token) else {
            throw PaymentsError(.unsupportedToken, "'\(token.prefix(40))' is not a supported token (\(tokens.symbols))")
        }
        guard let address = depositAddresses[supported.symbol] else {
            throw PaymentsError(
                .noDepositAddress,
                "no deposit address for \(supported.symbol): set TOLLGATE_DEPOSIT_ADDRESS_\(supported.symbol)=NETWORK:ADDRESS")
        }
        return try DepositCheckout(
            depositID: depositID, amount: parsed, token: supported.symbol, network: address.network,
            address: address.address, createdAt: createdAt)
    }

    /// The QR payload of a checkout.
    public func receivePayload(for deposit: DepositCheckout) -> ReceivePayload {
        ReceivePayload(
            network: deposit.network.name, address: deposit.address, amount: deposit.amount.description,
            token: deposit.token, uri: ReceivePayload.uri(
                network: deposit.network, address: deposit.address, amount: deposit.amount, token: deposit.token))
    }

    /// The credits a provider's completed amount is worth (see `TokenTable.credits`).
    public func credits(forAmount amount: String, currency: String) throws(PaymentsError) -> Money {
        try tokens.credits(forAmount: amount, currency: currency)
    }
}
