import Foundation
import Testing
@testable import TollgatePayments

@Suite("Payments configuration and receive payloads")
struct ConfigurationTests {
    let environment = [
        "TOLLGATE_MOONPAY_WEBHOOK_KEY": "whsec_test_moonpay_key",
        "TOLLGATE_MOONPAY_API_KEY": "pk_test_key",
        "TOLLGATE_MOONPAY_SECRET_KEY": "sk_test_key",
        "TOLLGATE_MOONPAY_URL": "https://buy-sandbox.moonpay.com",
        "TOLLGATE_ALCHEMYPAY_APP_ID": "app_test",
        "TOLLGATE_ALCHEMYPAY_APP_SECRET": "alchemy_test_secret",
        "TOLLGATE_ALCHEMYPAY_URL": "https://ramptest.alchemypay.org",
        "TOLLGATE_TOKENS": "USDT=1,USDC=1,DAI=0.99",
        "TOLLGATE_DEPOSIT_ADDRESS_USDT": "TRON:TXYZ123",
        "TOLLGATE_DEPOSIT_ADDRESS_usdc": "sol:So1ana",
        "TOLLGATE_DEPOSIT_ADDRESS_DAI": "",
        "PATH": "/usr/bin",
    ]

    @Test("everything is read from the environment")
    func reads() throws {
        let configuration = try PaymentsConfiguration(environment: environment)
        #expect(configuration.tokens.description == "USDT=1,USDC=1,DAI=0.99")
        #expect(configuration.depositAddresses["USDT"] == (try DepositAddress(token: "USDT", network: .tron, address: "TXYZ123")))
        #expect(configuration.depositAddresses["USDC"]?.network == .solana)
        #expect(configuration.depositAddresses["DAI"] == nil)
        #expect(configuration.moonPay.baseURL == "https://buy-sandbox.moonpay.com")
        #expect(configuration.moonPay.isWebhookConfigured)
        #expect(configuration.alchemyPay.isWebhookConfigured)
        #expect(configuration.alchemyPay.callbackPath == "/v1/webhooks/alchemypay")
        #expect(configuration.provider(named: "moonpay")?.name == "moonpay")
        #expect(configuration.provider(named: "AlchemyPay")?.name == "alchemypay")
        #expect(configuration.provider(named: "stripe") == nil)
        #expect(configuration.providers.map(\.name) == ["moonpay", "alchemypay"])
    }

    @Test("configured providers verify the test vectors through the lookup")
    func lookupVerifies() throws {
        let configuration = try PaymentsConfiguration(environment: environment)
        let moonPay = try #require(configuration.provider(named: "moonpay"))
        let event = try moonPay.verifyWebhook(
            headers: ["moonpay-signature-v2": "t=\(MoonPayVectors.timestamp),s=\(MoonPayVectors.completedSignature)"],
            body: bytes(MoonPayVectors.completedBody), now: signingTime)
        guard case .completed(let amount, let currency) = event.status else {
            Issue.record("expected completed, got \(event.status)")
            return
        }
        #expect(try configuration.credits(forAmount: amount, currency: currency).micros == 49_123_456)
        let alchemyPay = try #require(configuration.provider(named: "alchemypay"))
        let other = try alchemyPay.verifyWebhook(
            headers: ["timestamp": AlchemyPayVectors.timestamp], body: bytes(AlchemyPayVectors.body()), now: signingTime)
        #expect(other.depositID == "dep_456")
    }

    @Test("with nothing set: default tokens, default URLs, no addresses, webhooks not configured")
    func defaults() throws {
        let configuration = try PaymentsConfiguration(environment: [:])
        #expect(configuration.tokens == .default)
        #expect(configuration.depositAddresses.isEmpty)
        #expect(configuration.moonPay.baseURL == "https://buy.moonpay.com")
        #expect(configuration.alchemyPay.baseURL == "https://ramp.alchemypay.org")
        for name in ["moonpay", "alchemypay"] {
            let provider = try #require(configuration.provider(named: name))
            #expect(!provider.isWebhookConfigured)
            let error = try #require(throws: WebhookError.self) {
                try provider.verifyWebhook(headers: [:], body: [], now: signingTime)
            }
            #expect(error.code == .notConfigured)
            #expect(error.message.contains("TOLLGATE_"))
        }
        let noAddress = try #require(throws: PaymentsError.self) {
            try configuration.checkout(depositID: "d1", amount: "5", token: "USDT", createdAt: signingTime)
        }
        #expect(noAddress.code == .noDepositAddress)
        #expect(noAddress.message.contains("TOLLGATE_DEPOSIT_ADDRESS_USDT"))
    }

    @Test("unusable settings name their variable", arguments: [
        ("TOLLGATE_TOKENS", "USDT=zero"), ("TOLLGATE_DEPOSIT_ADDRESS_USDT", "TXYZ123"),
        ("TOLLGATE_DEPOSIT_ADDRESS_USDT", "TRON:"), ("TOLLGATE_DEPOSIT_ADDRESS_USDT", "TR ON:T1"),
        ("TOLLGATE_DEPOSIT_ADDRESS_USDT", "TRON:T 1"), ("TOLLGATE_DEPOSIT_ADDRESS_BUSD", "BSC:0xabc"),
        ("TOLLGATE_DEPOSIT_ADDRESS_", "TRON:T1"), ("TOLLGATE_MOONPAY_URL", "buy.moonpay.com"),
        ("TOLLGATE_ALCHEMYPAY_URL", "https://ramp.alchemypay.org?x=1"), ("TOLLGATE_ALCHEMYPAY_CALLBACK_PATH", "webhook"),
    ])
    func invalid(name: String, value: String) throws {
        let error = try #require(throws: PaymentsError.self) { try PaymentsConfiguration(environment: [name: value]) }
        #expect(error.code == .invalidConfiguration)
        #expect(error.message.contains("TOLLGATE_"))
    }

    @Test("a checkout carries the token's address; the QR payload says what to send where")
    func checkoutAndPayload() throws {
        let configuration = try PaymentsConfiguration(environment: environment)
        let deposit = try configuration.checkout(depositID: "dep_123", amount: "50.50", token: "usdt", createdAt: signingTime)
        #expect(deposit.token == "USDT")
        #expect(deposit.network == .tron)
        #expect(deposit.address == "TXYZ123")
        let payload = configuration.receivePayload(for: deposit)
        #expect(payload == ReceivePayload(
            network: "TRON", address: "TXYZ123", amount: "50.5", token: "USDT", uri: "tron:TXYZ123?amount=50.5&token=USDT"))
        let json = String(decoding: try JSONEncoder().encode(payload), as: UTF8.self)
        for key in ["network", "address", "amount", "token", "uri"] { #expect(json.contains("\"\(key)\"")) }
        let solana = try configuration.checkout(depositID: "dep_124", amount: "0.000001", token: "USDC", createdAt: signingTime)
        #expect(configuration.receivePayload(for: solana).uri == "solana:So1ana?amount=0.000001&token=USDC")
        #expect(configuration.moonPay.checkoutURL(for: solana).contains("currencyCode=usdc_sol"))
    }

    @Test("checkouts refuse bad amounts, unknown tokens and bad ids", arguments: [
        ("d1", "0", "USDT", PaymentsError.Code.invalidAmount), ("d1", "-5", "USDT", .invalidAmount), ("d1", "1e3", "USDT", .invalidAmount),
        ("d1", "5", "BTC", .unsupportedToken), ("d1", "5", "DAI", .noDepositAddress), ("d 1", "5", "USDT", .invalidDepositID),
    ])
    func refusedCheckouts(id: String, amount: String, token: String, code: PaymentsError.Code) throws {
        let configuration = try PaymentsConfiguration(environment: environment)
        let error = try #require(throws: PaymentsError.self) {
            try configuration.checkout(depositID: id, amount: amount, token: token, createdAt: signingTime)
        }
        #expect(error.code == code)
    }

    @Test("network names and aliases", arguments: [
        ("TRON", "TRON", "tron"), ("trx", "TRON", "tron"), ("TRC20", "TRON", "tron"), ("eth", "ETHEREUM", "ethereum"),
        ("ERC20", "ETHEREUM", "ethereum"), ("bep20", "BSC", "ethereum"), ("matic", "POLYGON", "ethereum"),
        ("SOL", "SOLANA", "solana"), ("arbitrum", "ARBITRUM", "ethereum"), ("ton", "TON", "ton"),
    ])
    func networks(text: String, name: String, scheme: String) throws {
        let network = try PaymentNetwork(parsing: text)
        #expect(network.name == name)
        #expect(network.uriScheme == scheme)
    }

    @Test("webhook error codes map to 400, 401 and 503")
    func statuses() {
        let cases: [(WebhookError.Code, Int)] = [
            (.missingSignature, 400), (.malformedSignature, 400), (.malformedBody, 400), (.badSignature, 401),
            (.staleTimestamp, 401), (.notConfigured, 503),
        ]
        for (code, status) in cases { #expect(WebhookError(code, "x").httpStatus == status) }
        #expect(WebhookError(.badSignature, "nope").description == "bad_signature: nope")
    }
}
