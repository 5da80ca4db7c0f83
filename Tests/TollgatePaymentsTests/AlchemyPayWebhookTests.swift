import Foundation
import Testing
@testable import TollgatePayments

@Suite("AlchemyPay webhooks")
struct AlchemyPayWebhookTests {
    let provider = AlchemyPayProvider(appID: AlchemyPayVectors.appID, appSecret: AlchemyPayVectors.appSecret)
    let headers = ["timestamp": AlchemyPayVectors.timestamp, "content-type": "application/json"]

    func code(_ body: () throws(WebhookError) -> WebhookEvent) -> WebhookError.Code? {
        do {
            _ = try body()
            return nil
        } catch {
            return error.code
        }
    }

    @Test("a valid FINISHED webhook credits cryptoQuantity of crypto to merchantOrderNo")
    func finished() throws {
        let event = try provider.verifyWebhook(headers: headers, body: bytes(AlchemyPayVectors.body()), now: signingTime)
        #expect(event == WebhookEvent(
            provider: "alchemypay", depositID: "dep_456", providerTransactionID: "1004509256035020800",
            status: .completed(amount: "12.93", currency: "USDT"), destination: "TXYZ123"))
    }

    @Test("the hand-written signed text is what openssl signs to the vector", .enabled(if: opensslAvailable))
    func vectorMatchesOpenssl() async throws {
        let mac = try await opensslHMAC(key: AlchemyPayVectors.appSecret, message: bytes(AlchemyPayVectors.signedText))
        #expect(Data(mac).base64EncodedString() == AlchemyPayVectors.newSignature)
    }

    @Test("the layout of AlchemyPay's documentation example ('\"name\": value') is accepted too")
    func documentedLayout() throws {
        let body = AlchemyPayVectors.body(newSignature: AlchemyPayVectors.documentedLayoutSignature)
        let event = try provider.verifyWebhook(headers: headers, body: bytes(body), now: signingTime)
        #expect(event.depositID == "dep_456")
    }

    @Test("whitespace and member order in the received body do not change the signed text")
    func bodyLayoutIrrelevant() throws {
        let body = """
            {
              "status": "FINISHED", "appId": "app_test", "cryptoQuantity": "12.93", "network": "TRX",
              "crypto": "USDT", "merchantOrderNo": "dep_456", "orderNo": "1004509256035020800",
              "address": "TXYZ123", "newSignature": "\(AlchemyPayVectors.newSignature)"
            }
            """
        let event = try provider.verifyWebhook(headers: headers, body: bytes(body), now: signingTime)
        #expect(event.providerTransactionID == "1004509256035020800")
    }

    @Test("PAY_FAIL fails the deposit; PAY_SUCCESS and unknown statuses are .other")
    func statuses() async throws {
        for (status, expected) in [
            ("PAY_FAIL", WebhookEvent.Status.failed), ("PAY_SUCCESS", .other("PAY_SUCCESS")), ("REFUNDED", .other("REFUNDED")),
        ] {
            let unsigned = AlchemyPayVectors.body(status: status, newSignature: nil)
            let body = try await resigned(unsigned)
            let event = try provider.verifyWebhook(headers: headers, body: bytes(body), now: signingTime)
            #expect(event.status == expected)
            #expect(event.depositID == "dep_456")
        }
    }

    /// Adds a `newSignature` computed by openssl over the text the documentation describes,
    /// built here by hand-sorting the members (independent of the provider's code).
    func resigned(_ body: String) async throws -> String {
        guard case .object(let members) = try #require(JSONValue.parse(bytes(body))) else { throw CancellationError() }
        let kept = members.filter { !["signature", "newSignature"].contains($0.name) && $0.rawValue != "null" && $0.rawValue != #""""# }
        let sorted = kept.sorted { $0.name < $1.name }.map { "\($0.rawName):\($0.rawValue)" }.joined(separator: ",")
        let text = AlchemyPayVectors.timestamp + "POST/v1/webhooks/alchemypay{" + sorted + "}"
        let mac = opensslAvailable
            ? try await opensslHMAC(key: AlchemyPayVectors.appSecret, message: bytes(text))
            : hmacSHA256(key: AlchemyPayVectors.appSecret, message: bytes(text))
        return String(body.dropLast()) + #","newSignature":""# + Data(mac).base64EncodedString() + #""}"#
    }

    @Test("a tampered body is refused", arguments: [
        ("12.93", "1293.00"), ("dep_456", "dep_457"), (#""status":"FINISHED""#, #""status":"FINISHEd""#),
        (#""message":"""#, #""message":"x""#), (#""txHash":null"#, #""txHash":"0xabc""#),
    ])
    func tampered(from: String, to: String) {
        let body = AlchemyPayVectors.body().replacingOccurrences(of: from, with: to)
        #expect(code { () throws(WebhookError) in
            try provider.verifyWebhook(headers: headers, body: bytes(body), now: signingTime)
        } == .badSignature)
    }

    @Test("the deprecated signature field is not signed, so changing it changes nothing")
    func deprecatedFieldIgnored() throws {
        let body = AlchemyPayVectors.body().replacingOccurrences(of: "f13fb8137f2c", with: "000000000000")
        #expect(try provider.verifyWebhook(headers: headers, body: bytes(body), now: signingTime).depositID == "dep_456")
    }

    @Test("the wrong secret, another callback path, or another appId is refused")
    func wrongKey() {
        let others = [
            AlchemyPayProvider(appID: AlchemyPayVectors.appID, appSecret: "alchemy_test_secreT"),
            AlchemyPayProvider(appID: AlchemyPayVectors.appID, appSecret: AlchemyPayVectors.appSecret, callbackPath: "/webhook"),
            AlchemyPayProvider(appID: "someone_else", appSecret: AlchemyPayVectors.appSecret),
        ]
        for other in others {
            #expect(code { () throws(WebhookError) in
                try other.verifyWebhook(headers: headers, body: bytes(AlchemyPayVectors.body()), now: signingTime)
            } == .badSignature)
        }
    }

    @Test("a tampered timestamp header is refused")
    func tamperedTimestamp() {
        #expect(code { () throws(WebhookError) in
            try provider.verifyWebhook(headers: ["timestamp": "1767225600001"], body: bytes(AlchemyPayVectors.body()), now: signingTime)
        } == .badSignature)
    }

    @Test("timestamps more than 5 minutes off either way are stale", arguments: [
        (-300.001, false), (-300.0, true), (0.0, true), (300.0, true), (300.001, false), (3_600.0, false), (-3_600.0, false),
    ])
    func tolerance(offset: Double, accepted: Bool) {
        let result = code { () throws(WebhookError) in
            try provider.verifyWebhook(
                headers: headers, body: bytes(AlchemyPayVectors.body()), now: signingTime.addingTimeInterval(offset))
        }
        #expect(result == (accepted ? nil : .staleTimestamp))
    }

    @Test("a missing timestamp header or newSignature is missing_signature")
    func missing() {
        #expect(code { () throws(WebhookError) in
            try provider.verifyWebhook(headers: [:], body: bytes(AlchemyPayVectors.body()), now: signingTime)
        } == .missingSignature)
        #expect(code { () throws(WebhookError) in
            try provider.verifyWebhook(headers: headers, body: bytes(AlchemyPayVectors.body(newSignature: nil)), now: signingTime)
        } == .missingSignature)
        let nullSignature = String(AlchemyPayVectors.body(newSignature: nil).dropLast()) + #","newSignature":null}"#
        #expect(code { () throws(WebhookError) in
            try provider.verifyWebhook(headers: headers, body: bytes(nullSignature), now: signingTime)
        } == .missingSignature)
    }

    @Test("malformed timestamps and signatures are malformed_signature", arguments: [
        ("1767225600000x", AlchemyPayVectors.newSignature), ("-1767225600000", AlchemyPayVectors.newSignature),
        ("1.767e12", AlchemyPayVectors.newSignature), (AlchemyPayVectors.timestamp, "not base64!"),
        (AlchemyPayVectors.timestamp, "c2hvcnQ="), (AlchemyPayVectors.timestamp, "504507cd79e72cd077e2bd1d20e94bd60f9e9417863d13321d21e63d99da4069"),
    ])
    func malformedSignature(timestamp: String, signature: String) {
        #expect(code { () throws(WebhookError) in
            try provider.verifyWebhook(
                headers: ["timestamp": timestamp], body: bytes(AlchemyPayVectors.body(newSignature: signature)), now: signingTime)
        } == .malformedSignature)
    }

    @Test("bodies that are not a JSON object are malformed_body", arguments: [
        "", "status=FINISHED&orderNo=1", "[1]", #"{"a":1"#, #"{"a":1,"a":2}"#, "\u{FEFF}{}",
    ])
    func notJSON(body: String) {
        #expect(code { () throws(WebhookError) in
            try provider.verifyWebhook(headers: headers, body: bytes(body), now: signingTime)
        } == .malformedBody)
    }

    @Test("a signed FINISHED webhook without the fields we need is malformed_body")
    func missingFields() async throws {
        for removed in [#""orderNo":"1004509256035020800","#, #""merchantOrderNo":"dep_456","#, #""cryptoQuantity":"12.93","#, #""crypto":"USDT","#] {
            let unsigned = AlchemyPayVectors.body(newSignature: nil).replacingOccurrences(of: removed, with: "")
            let body = try await resigned(unsigned)
            #expect(code { () throws(WebhookError) in
                try provider.verifyWebhook(headers: headers, body: bytes(body), now: signingTime)
            } == .malformedBody)
        }
    }

    @Test("without an appSecret every webhook is refused as not_configured")
    func notConfigured() {
        let provider = AlchemyPayProvider(appID: "app_test")
        #expect(!provider.isWebhookConfigured)
        #expect(code { () throws(WebhookError) in
            try provider.verifyWebhook(headers: headers, body: bytes(AlchemyPayVectors.body()), now: signingTime)
        } == .notConfigured)
    }
}
