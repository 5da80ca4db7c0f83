/// Where deposits of one token are received: a network and an address.
///
/// Configured per token as `TOLLGATE_DEPOSIT_ADDRESS_<TOKEN>=NETWORK:ADDRESS`, for example
/// `TOLLGATE_DEPOSIT_ADDRESS_USDT=TRON:TXYZ...`. There is no default: a made-up address would
/// send real funds nowhere.
public struct DepositAddress: Sendable, Hashable {
    /// The token symbol, uppercase.
    public let token: String
    /// The network.
    public let network: PaymentNetwork
    /// The receiving address, as configured (1 to 128 printable ASCII characters, no spaces).
    public let address: String

    /// A deposit address.
    public init(token: String, network: PaymentNetwork, address: String) throws(PaymentsError) {
        let bytes = address.utf8
        guard (1...128).contains(bytes.count), bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw PaymentsError(
                .invalidConfiguration,
                "the \(token) deposit address must be 1 to 128 printable characters without spaces")
        }
        self.token = token.uppercased()
        self.network = network
        self.address = address
    }

    /// Parses `NETWORK:ADDRESS` (split at the first `:`).
    public init(token: String, parsing spec: String) throws(PaymentsError) {
        let parts = spec.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw PaymentsError(
                .invalidConfiguration,
                "TOLLGATE_DEPOSIT_ADDRESS_\(token.uppercased()) must be NETWORK:ADDRESS, like TRON:TXYZ...")
        }
        try self.init(
            token: token, network: PaymentNetwork(parsing: String(parts[0]).trimmingSpaces),
            address: String(parts[1]).trimmingSpaces)
    }
}

/// What the deposit page turns into a QR code and shows beside it.
///
/// `uri` follows the BIP-21 pattern that wallets share for "pay this address this amount":
/// `<scheme>:<address>?amount=<decimal>&token=<SYMBOL>`, with the chain's scheme (`tron`,
/// `ethereum` for every EVM chain, `solana`, ...). The amount is in token units (not base units),
/// as BIP-21 and Solana Pay write it. Wallets that know no `token` parameter still prefill the
/// address and amount, so the page must show token and network in words next to the code; a
/// wallet that cannot read the URI at all can scan `address` alone.
public struct ReceivePayload: Sendable, Hashable, Codable {
    /// The network name, such as `TRON`.
    public var network: String
    /// The receiving address.
    public var address: String
    /// The amount of `token` to send, as a decimal string.
    public var amount: String
    /// The token symbol.
    public var token: String
    /// The payment URI for the QR code.
    public var uri: String

    /// The payload for sending `amount` of `deposit.token` to `deposit.address`.
    public init(deposit: DepositAddress, amount: DecimalAmount) {
        self.init(
            network: deposit.network.name, address: deposit.address, amount: amount.description, token: deposit.token,
            uri: Self.uri(network: deposit.network, address: deposit.address, amount: amount, token: deposit.token))
    }

    /// A payload from its parts.
    public init(network: String, address: String, amount: String, token: String, uri: String) {
        self.network = network
        self.address = address
        self.amount = amount
        self.token = token
        self.uri = uri
    }

    /// `<scheme>:<address>?amount=<decimal>&token=<SYMBOL>`.
    public static func uri(network: PaymentNetwork, address: String, amount: DecimalAmount, token: String) -> String {
        "\(network.uriScheme):\(percentEncoded(address))?amount=\(amount)&token=\(percentEncoded(token))"
    }
}
