import Foundation
import Testing
@testable import TollgatePayments

@Suite("MoonPay webhooks")
struct MoonPayWebhookTests {
    let provider = MoonPayProvider(webhookKey: MoonPayVectors.webhookKey)

    func headers(t: String = MoonPayVectors.timestamp, s: String = MoonPayVectors.completedSignature) -> [String: String] {
        ["moonpay-signature-v2": "t=\(t),s=\(s)", "content-type": "application/json"]
    }

    func code(_ body: () throws(WebhookError) -> WebhookEvent) -> WebhookError.Code? {
        do {
            _ = try body()
            return nil
        } catch {
            return error.code
        }
    }

    @Test("a valid completed webhook gives the deposit, the transaction and the amount as sent")
    func completed() throws {
        let event = try provider.verifyWebhook(
            headers: headers(), body: bytes(MoonPayVectors.completedBody), now: signingTime)
        #expect(event.provider == "moonpay")
        #expect(event.depositID == "dep_123")
        #expect(event.providerTransactionID == "mp-tx-1")
        #expect(event.status == .completed(amount: "49.1234567", currency: "usdt_trx"))
        #expect(event.destination == "TXYZ123")
    }

    @Test("a valid failed webhook fails the deposit")
    func failed() throws {
        let event = try provider.verifyWebhook(
            headers: headers(s: MoonPayVectors.failedSignature), body: bytes(MoonPayVectors.failedBody),
            now: signingTime)
        #expect(event == WebhookEvent(provider: "moonpay", depositID: "dep_124", providerTransactionID: "mp-tx-2", status: .failed))
    }

    @Test("the signature also matches one computed by openssl at test time", .enabled(if: opensslAvailable))
    func opensslAgrees() async throws {
        let body = #"{"type":"transaction_updated","data":{"id":"x-\#(UUID().uuidString)","externalTransactionId":"dep_9","status":"completed","quoteCurrencyAmount":"7","currency":{"code":"usdc"}}}"#
        let mac = try await opensslHMAC(key: "another key", message: bytes("1767225660." + body))
        let provider = MoonPayProvider(webhookKey: "another key")
        let event = try provider.verifyWebhook(
            headers: ["moonpay-signature-v2": "t=1767225660,s=\(hex(mac))"], body: bytes(body), now: signingTime)
        #expect(event.status == .completed(amount: "7", currency: "usdc"))
    }

    @Test("a tampered body is refused")
    func tampered() {
        let tampered = MoonPayVectors.completedBody.replacingOccurrences(of: "49.1234567", with: "4900.1234567")
        #expect(code { () throws(WebhookError) in
            try provider.verifyWebhook(headers: headers(), body: bytes(tampered), now: signingTime)
        } == .badSignature)
        var oneBitOff = bytes(MoonPayVectors.completedBody)
        oneBitOff[oneBitOff.count - 3] ^= 1
        #expect(code { () throws(WebhookError) in
            try provider.verifyWebhook(headers: headers(), body: oneBitOff, now: signingTime)
        } == .badSignature)
    }

    @Test("a tampered timestamp is refused")
    func tamperedTimestamp() {
        #expect(code { () throws(WebhookError) in
            try provider.verifyWebhook(headers: headers(t: "1767225601"), body: bytes(MoonPayVectors.completedBody), now: signingTime)
        } == .badSignature)
    }

    @Test("the wrong key is refused")
    func wrongKey() {
        let other = MoonPayProvider(webhookKey: "whsec_test_moonpay_kez")
        #expect(code { () throws(WebhookError) in
            try other.verifyWebhook(headers: headers(), body: bytes(MoonPayVectors.completedBody), now: signingTime)
        } == .badSignature)
    }

    @Test("timestamps more than 5 minutes off either way are stale; 5 minutes exactly is not", arguments: [
        (-301.0, false), (-300.0, true), (0.0, true), (300.0, true), (301.0, false), (-86_400.0, false), (86_400.0, false),
    ])
    func tolerance(offset: Double, accepted: Bool) {
        let result = code { () throws(WebhookError) in
            try provider.verifyWebhook(
                headers: headers(), body: bytes(MoonPayVectors.completedBody), now: signingTime.addingTimeInterval(offset))
        }
        #expect(result == (accepted ? nil : .staleTimestamp))
    }

    @Test("a missing header is refused as missing_signature (400)")
    func missingHeader() throws {
        let error = try #require(throws: WebhookError.self) {
            try provider.verifyWebhook(
                headers: ["moonpay-signature": "t=1,s=2"], body: bytes(MoonPayVectors.completedBody), now: signingTime)
        }
        #expect(error.code == .missingSignature)
        #expect(error.httpStatus == 400)
    }

    @Test("malformed headers are refused as malformed_signature", arguments: [
        "", "garbage", "t=1767225600", "s=504507cd79e72cd077e2bd1d20e94bd60f9e9417863d13321d21e63d99da4069",
        "t=,s=504507cd79e72cd077e2bd1d20e94bd60f9e9417863d13321d21e63d99da4069",
        "t=1767225600,s=", "t=1767225600,s=zz4507cd79e72cd077e2bd1d20e94bd60f9e9417863d13321d21e63d99da4069",
        "t=1767225600,s=504507cd", "t=-1767225600,s=504507cd79e72cd077e2bd1d20e94bd60f9e9417863d13321d21e63d99da4069",
        "t=1.5,s=504507cd79e72cd077e2bd1d20e94bd60f9e9417863d13321d21e63d99da4069",
        "t=1767225600;s=504507cd79e72cd077e2bd1d20e94bd60f9e9417863d13321d21e63d99da4069",
        "t=1767225600,t=1767225601,s=504507cd79e72cd077e2bd1d20e94bd60f9e9417863d13321d21e63d99da4069",
        "t=1767225600,s=504507cd79e72cd077e2bd1d20e94bd60f9e9417863d13321d21e63d99da4069,s=00",
    ])
    func malformedHeader(header: String) {
        #expect(code { () throws(WebhookError) in
            try provider.verifyWebhook(
                headers: ["moonpay-signature-v2": header], body: bytes(MoonPayVectors.completedBody), now: signingTime)
        } == .malformedSignature)
    }

    @Test("spaces, element order and unknown elements in the header do not matter")
    func headerVariants() throws {
        for header in [
            "s=\(MoonPayVectors.completedSignature),t=\(MoonPayVectors.timestamp)",
            "t=\(MoonPayVectors.timestamp), s=\(MoonPayVectors.completedSignature)",
            "t=\(MoonPayVectors.timestamp),v0=abc,s=\(MoonPayVectors.completedSignature)",
        ] {
            let event = try provider.verifyWebhook(
                headers: ["moonpay-signature-v2": header], body: bytes(MoonPayVectors.completedBody), now: signingTime)
            #expect(event.depositID == "dep_123")
        }
    }

    @Test("uppercase hex names the same MAC and is accepted")
    func uppercaseHex() throws {
        let event = try provider.verifyWebhook(
            headers: headers(s: MoonPayVectors.completedSignature.uppercased()), body: bytes(MoonPayVectors.completedBody),
            now: signingTime)
        #expect(event.providerTransactionID == "mp-tx-1")
    }

    @Test("without a webhook key every webhook is refused as not_configured (503)")
    func notConfigured() throws {
        for provider in [MoonPayProvider(), MoonPayProvider(webhookKey: "")] {
            #expect(!provider.isWebhookConfigured)
            let error = try #require(throws: WebhookError.self) {
                try provider.verifyWebhook(headers: headers(), body: bytes(MoonPayVectors.completedBody), now: signingTime)
            }
            #expect(error.code == .notConfigured)
            #expect(error.httpStatus == 503)
        }
    }

    /// Signs `body` at `signingTime` with the test key, via openssl-free HMAC from the library's
    /// dependency (the vectors above pin that HMAC against openssl).
    func signed(_ body: String) -> [String: String] {
        let mac = hmacSHA256(key: MoonPayVectors.webhookKey, message: bytes(MoonPayVectors.timestamp + "." + body))
        return ["moonpay-signature-v2": "t=\(MoonPayVectors.timestamp),s=\(hexEncoded(mac))"]
    }

    @Test("signed bodies that are not the documented JSON are malformed_body", arguments: [
        "", "not json", "[]", "{}", #"{"data":[]}"#, #"{"data":{"id":"1"}"#, #"{"data":{"id":"1","status":"completed"}} trailing"#,
        #"{"data":{"id":"1","externalTransactionId":"d","status":"completed","currency":{"code":"usdt"}}}"#,
        #"{"data":{"id":"1","externalTransactionId":"d","status":"completed","quoteCurrencyAmount":5}}"#,
        #"{"data":{"externalTransactionId":"d","status":"completed","quoteCurrencyAmount":5,"currency":{"code":"usdt"}}}"#,
        #"{"data":{"id":"1","status":"failed"}}"#,
        #"{"data":{"id":"1","id":"2","externalTransactionId":"d","status":"failed"}}"#,
        "{\"data\":{\"id\":\"1\",\"externalTransactionId\":\"d\",\"status\":\"failed\"},}",
    ])
    func malformedBody(body: String) {
        #expect(code { () throws(WebhookError) in
            try provider.verifyWebhook(headers: signed(body), body: bytes(body), now: signingTime)
        } == .malformedBody)
    }

    @Test("statuses and events we do not act on are .other", arguments: [
        (#"{"type":"transaction_updated","data":{"id":"1","externalTransactionId":"d","status":"pending"}}"#, "pending"),
        (#"{"type":"transaction_created","data":{"id":"1","externalTransactionId":"d","status":"waitingPayment"}}"#, "waitingPayment"),
        (#"{"type":"sell_transaction_updated","data":{"id":"1","status":"completed"}}"#, "event sell_transaction_updated"),
        (#"{"data":{"status":"somethingNew"}}"#, "somethingNew"),
    ])
    func otherStatuses(body: String, what: String) throws {
        let event = try provider.verifyWebhook(headers: signed(body), body: bytes(body), now: signingTime)
        #expect(event.status == .other(what))
    }

    @Test("a string amount and an exponent amount are passed on as written")
    func amountForms() throws {
        for (literal, expected) in [(#""12.5""#, "12.5"), ("1e-7", "1e-7"), ("100", "100")] {
            let body = #"{"data":{"id":"1","externalTransactionId":"d","status":"completed","quoteCurrencyAmount":"#
                + literal + #","currency":{"code":"usdc"}}}"#
            let event = try provider.verifyWebhook(headers: signed(body), body: bytes(body), now: signingTime)
            #expect(event.status == .completed(amount: expected, currency: "usdc"))
        }
    }
}
