import Foundation
import Testing
@testable import TollgatePayments

@Suite("Checkout URLs")
struct CheckoutURLTests {
    func deposit(
        id: String = "dep_123", amount: String = "50", token: String = "USDT", network: PaymentNetwork = .tron,
        address: String = "TXYZ123"
    ) throws -> DepositCheckout {
        try DepositCheckout(
            depositID: id, amount: DecimalAmount(parsing: amount), token: token, network: network, address: address,
            createdAt: signingTime)
    }

    @Test("MoonPay, signed: parameters in order, signature of '?query' last and percent-encoded")
    func moonPaySigned() throws {
        let provider = MoonPayProvider(apiKey: "pk_test_key", secretKey: MoonPayVectors.secretKey)
        let url = provider.checkoutURL(for: try deposit())
        let encoded = MoonPayVectors.urlSignature
            .replacingOccurrences(of: "/", with: "%2F").replacingOccurrences(of: "+", with: "%2B")
            .replacingOccurrences(of: "=", with: "%3D")
        #expect(url == "https://buy.moonpay.com?apiKey=pk_test_key&currencyCode=usdt_trx&quoteCurrencyAmount=50"
            + "&walletAddress=TXYZ123&externalTransactionId=dep_123&signature=" + encoded)
        #expect(encoded.contains("%2F") && encoded.contains("%2B") && encoded.hasSuffix("%3D"))
    }

    @Test("MoonPay, unsigned without a secret key; no apiKey without a publishable key")
    func moonPayUnsigned() throws {
        let url = MoonPayProvider(baseURL: "https://buy-sandbox.moonpay.com", apiKey: "pk_test_key").checkoutURL(for: try deposit())
        #expect(url == "https://buy-sandbox.moonpay.com?apiKey=pk_test_key&currencyCode=usdt_trx&quoteCurrencyAmount=50"
            + "&walletAddress=TXYZ123&externalTransactionId=dep_123")
        let bare = MoonPayProvider().checkoutURL(for: try deposit(amount: "12.500"))
        #expect(bare == "https://buy.moonpay.com?currencyCode=usdt_trx&quoteCurrencyAmount=12.5"
            + "&walletAddress=TXYZ123&externalTransactionId=dep_123")
    }

    @Test("values are percent-encoded, and the signature covers the encoded query", .enabled(if: opensslAvailable))
    func moonPayEncoding() async throws {
        let provider = MoonPayProvider(apiKey: "pk test/key+1", secretKey: "sk")
        let url = provider.checkoutURL(for: try deposit(network: .ethereum, address: "0xAb&c=d?é"))
        let query = "?apiKey=pk%20test%2Fkey%2B1&currencyCode=usdt&quoteCurrencyAmount=50&walletAddress=0xAb%26c%3Dd%3F%C3%A9"
            + "&externalTransactionId=dep_123"
        #expect(url.hasPrefix("https://buy.moonpay.com" + query + "&signature="))
        let signature = try await opensslHMAC(key: "sk", message: bytes(query))
        let expected = Data(signature).base64EncodedString()
        let sent = String(url.split(separator: "&signature=").last!)
        #expect(sent.removingPercentEncoding == expected)
    }

    @Test("MoonPay currency codes per network", arguments: [
        (PaymentNetwork.ethereum, "usdc"), (.tron, "usdc_trx"), (.bsc, "usdc_bsc"), (.polygon, "usdc_polygon"),
        (.solana, "usdc_sol"), (try! PaymentNetwork(parsing: "base"), "usdc_base"),
    ])
    func currencyCodes(network: PaymentNetwork, code: String) {
        #expect(MoonPayProvider.currencyCode(token: "USDC", network: network) == code)
    }

    @Test("AlchemyPay, signed: sorted parameters, sign over the documented text")
    func alchemyPaySigned() throws {
        let provider = AlchemyPayProvider(appID: AlchemyPayVectors.appID, appSecret: AlchemyPayVectors.appSecret)
        let url = provider.checkoutURL(for: try deposit(id: "dep_456"))
        let encoded = AlchemyPayVectors.pageSign
            .replacingOccurrences(of: "/", with: "%2F").replacingOccurrences(of: "+", with: "%2B")
            .replacingOccurrences(of: "=", with: "%3D")
        #expect(url == "https://ramp.alchemypay.org?address=TXYZ123&appId=app_test&crypto=USDT&fiat=USD&fiatAmount=50"
            + "&merchantOrderNo=dep_456&network=TRX&showTable=buy&timestamp=1767225600000&sign=" + encoded)
    }

    @Test("AlchemyPay's signed text matches its documented example exactly")
    func alchemyPayDocumentExample() {
        // From "Ramp Signature Description": the URL's parameters and the signature string it shows.
        let text = AlchemyPayProvider.pageSignatureText(timestamp: "1538054050234", parameters: [
            ("appId", "f83Is2y7L425rxl8"), ("crypto", "USDT"), ("network", "ETH"), ("showTable", "buy"), ("fiat", "USD"),
            ("fiatAmount", "30"), ("timestamp", "1538054050234"), ("empty", ""),
        ])
        #expect(text == "1538054050234GET/index/rampPageBuy?appId=f83Is2y7L425rxl8&crypto=USDT&fiat=USD&fiatAmount=30"
            + "&network=ETH&showTable=buy&timestamp=1538054050234")
    }

    @Test("AlchemyPay, unsigned without an appSecret, values percent-encoded")
    func alchemyPayUnsigned() throws {
        let provider = AlchemyPayProvider(baseURL: "https://ramptest.alchemypay.org")
        let url = provider.checkoutURL(for: try deposit(id: "d:1", amount: "0.000001", token: "usdc", network: .solana, address: "So1 ana/+"))
        #expect(url == "https://ramptest.alchemypay.org?address=So1%20ana%2F%2B&crypto=USDC&fiat=USD&fiatAmount=0.000001"
            + "&merchantOrderNo=d%3A1&network=SOL&showTable=buy&timestamp=1767225600000")
    }

    @Test("deposit ids a provider could not carry are refused", arguments: [
        "", "a b", "dép", "a&b", "a/b", String(repeating: "x", count: 49),
    ])
    func badDepositIDs(id: String) {
        #expect(throws: PaymentsError.self) { try deposit(id: id) }
    }

    @Test("deposit ids of letters, digits and -_.: up to 48 bytes are fine")
    func goodDepositIDs() throws {
        for id in ["d", "dep_01J9-ABC.def:1", String(repeating: "x", count: 48)] {
            #expect(try deposit(id: id).depositID == id)
        }
    }
}
