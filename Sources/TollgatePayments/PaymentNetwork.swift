/// A blockchain a token is paid on, by its canonical uppercase name: `TRON`, `ETHEREUM`, ...
///
/// Common aliases are accepted when parsing (`TRX`, `TRC20` → `TRON`; `ETH`, `ERC20` →
/// `ETHEREUM`; `BNB`, `BEP20` → `BSC`; `MATIC` → `POLYGON`; `SOL` → `SOLANA`); any other name of
/// 1 to 32 letters, digits, `_` or `-` is kept as written, uppercased. Each provider maps the
/// name to its own code (see `MoonPayProvider.currencyCode` and `AlchemyPayProvider.networkCode`).
public struct PaymentNetwork: Sendable, Hashable, CustomStringConvertible {
    /// The canonical name.
    public let name: String

    /// Tron.
    public static let tron = PaymentNetwork(unchecked: "TRON")
    /// Ethereum mainnet.
    public static let ethereum = PaymentNetwork(unchecked: "ETHEREUM")
    /// BNB Smart Chain.
    public static let bsc = PaymentNetwork(unchecked: "BSC")
    /// Polygon PoS.
    public static let polygon = PaymentNetwork(unchecked: "POLYGON")
    /// Solana.
    public static let solana = PaymentNetwork(unchecked: "SOLANA")

    private init(unchecked name: String) { self.name = name }

    /// Parses a network name or alias, case-insensitively.
    public init(parsing text: String) throws(PaymentsError) {
        let upper = text.uppercased()
        switch upper {
        case "TRON", "TRX", "TRC20": self = .tron
        case "ETHEREUM", "ETH", "ERC20": self = .ethereum
        case "BSC", "BNB", "BEP20": self = .bsc
        case "POLYGON", "MATIC": self = .polygon
        case "SOLANA", "SOL": self = .solana
        default:
            let valid = (1...32).contains(upper.utf8.count)
                && upper.utf8.allSatisfy {
                    ($0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9"))
                        || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-")
                }
            guard valid else {
                throw PaymentsError(
                    .invalidConfiguration, "'\(text.prefix(40))' is not a network name (1 to 32 letters, digits, _ or -)")
            }
            self.init(unchecked: upper)
        }
    }

    /// The URI scheme of the chain's wallets, used in `ReceivePayload.uri`: `tron`, `ethereum`
    /// (every EVM chain), `solana`, or the lowercased name for others.
    public var uriScheme: String {
        switch name {
        case "TRON": "tron"
        case "ETHEREUM", "BSC", "POLYGON", "ARBITRUM", "BASE", "OPTIMISM", "AVALANCHE": "ethereum"
        case "SOLANA": "solana"
        default: name.lowercased()
        }
    }

    public var description: String { name }
}
