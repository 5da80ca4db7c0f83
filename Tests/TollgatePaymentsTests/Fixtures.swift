import Foundation
import Testing
import TollgateTestSupport

/// 2026-01-01T00:00:00Z, the moment every vector below was signed.
let signingTime = Date(timeIntervalSince1970: 1_767_225_600)

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

enum MoonPayVectors {
    static let webhookKey = "whsec_test_moonpay_key"
    static let timestamp = "1767225600"

    static let completedBody = #"{"type":"transaction_updated","data":{"id":"mp-tx-1","externalTransactionId":"dep_123","status":"completed","quoteCurrencyAmount":49.1234567,"currency":{"code":"usdt_trx"},"walletAddress":"TXYZ123"}}"#
    /// printf '%s' "1767225600.$completedBody" | openssl dgst -sha256 -hmac whsec_test_moonpay_key -hex
    static let completedSignature = "448f6444075c99b905f50613e4028cb357bd238c4799dfd36c9c71e581bbc3e8"

    static let failedBody = #"{"type":"transaction_failed","data":{"id":"mp-tx-2","externalTransactionId":"dep_124","status":"failed","currency":{"code":"usdt_trx"}}}"#
    /// printf '%s' "1767225600.$failedBody" | openssl dgst -sha256 -hmac whsec_test_moonpay_key -hex
    static let failedSignature = "65295bd8b14b39936340ea3a6b420571e42a1743de1878bc890c7df58bc05c5f"

    static let secretKey = "sk_test_key"
    /// printf '%s' '?apiKey=pk_test_key&currencyCode=usdt_trx&quoteCurrencyAmount=50&walletAddress=TXYZ123&externalTransactionId=dep_123' \
    ///   | openssl dgst -sha256 -hmac sk_test_key -binary | base64
    static let urlSignature = "JQ96PgvnYMEsfKiLtY/ssi+8Phl22+wCii3zvlo8mJo="
}

enum AlchemyPayVectors {
    static let appID = "app_test"
    static let appSecret = "alchemy_test_secret"
    static let timestamp = "1767225600000"

    /// The signed text, written out by hand from the body below (members sorted, `signature`,
    /// `newSignature`, the empty `message` and the null `txHash` dropped):
    static let signedText = #"1767225600000POST/v1/webhooks/alchemypay{"address":"TXYZ123","appId":"app_test","crypto":"USDT","cryptoQuantity":"12.93","merchantOrderNo":"dep_456","network":"TRX","orderNo":"1004509256035020800","status":"FINISHED"}"#
    /// printf '%s' "$signedText" | openssl dgst -sha256 -hmac alchemy_test_secret -binary | base64
    static let newSignature = "nW9ibD9uBp/RUyfGLmVaWYPFgh3FTe3hcJyg6aL0fBE="
    /// The same members in the layout of AlchemyPay's own example (`"name": value`):
    /// printf '%s' '1767225600000POST/v1/webhooks/alchemypay{"address": "TXYZ123","appId": "app_test","crypto": "USDT","cryptoQuantity": "12.93","merchantOrderNo": "dep_456","network": "TRX","orderNo": "1004509256035020800","status": "FINISHED"}' \
    ///   | openssl dgst -sha256 -hmac alchemy_test_secret -binary | base64
    static let documentedLayoutSignature = "eFg01V3n5x50FIcSXfqkcHNmfcPl0LWePTKEiG7A18w="

    static func body(status: String = "FINISHED", newSignature: String? = AlchemyPayVectors.newSignature) -> String {
        var text = #"{"orderNo":"1004509256035020800","address":"TXYZ123","signature":"f13fb8137f2c999c5932261de9bc8668b0a7b014","merchantOrderNo":"dep_456","crypto":"USDT","network":"TRX","cryptoQuantity":"12.93","appId":"app_test","status":""#
        text += status + #"","message":"","txHash":null"#
        if let newSignature { text += #","newSignature":""# + newSignature + #"""# }
        return text + "}"
    }

    /// printf '%s' '1767225600000GET/index/rampPageBuy?address=TXYZ123&appId=app_test&crypto=USDT&fiat=USD&fiatAmount=50&merchantOrderNo=dep_456&network=TRX&showTable=buy&timestamp=1767225600000' \
    ///   | openssl dgst -sha256 -hmac alchemy_test_secret -binary | base64
    static let pageSign = "GrTYI/ZVPGs3l+oUwfyZujbZF1vZzP/RUg0ekjwzDcQ="
}

/// Runs `openssl dgst -sha256 -hmac KEY` on `message`; the digest as raw bytes.
func opensslHMAC(key: String, message: [UInt8]) async throws -> [UInt8] {
    // The message as text on stdin: every message these tests sign is UTF-8.
    let result = try await CommandRunner.run(URL(fileURLWithPath: "/usr/bin/openssl"), ["dgst", "-sha256", "-hmac", key],
                                             stdin: String(decoding: message, as: UTF8.self))
    // "SHA2-256(stdin)= 4f3a..." (older versions: "(stdin)= 4f3a...").
    let hexDigest = try #require(result.stdout.split(separator: " ").last, "openssl said: \(result.stderr)")
        .trimmingCharacters(in: .whitespacesAndNewlines)
    var digest: [UInt8] = []
    var index = hexDigest.startIndex
    while index < hexDigest.endIndex, let next = hexDigest.index(index, offsetBy: 2, limitedBy: hexDigest.endIndex) {
        digest.append(try #require(UInt8(hexDigest[index..<next], radix: 16), "not hex: \(hexDigest)"))
        index = next
    }
    #expect(result.status == 0 && digest.count == 32, "openssl: \(result.status) \(result.stdout) \(result.stderr)")
    return digest
}

let opensslAvailable = FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl")

func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
