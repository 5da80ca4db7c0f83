import Foundation
import HTTPTypes
import HummingbirdWSClient
import Logging
import Synchronization
import TollgateTestSupport

/// Admin and service calls to any server process started with the test tokens.
struct E2EClient: Sendable {
    let http: TestHTTPClient

    func admin(_ method: String, _ path: String, _ body: Any? = nil) async throws -> TestHTTPResponse {
        try await http.json(method, path, token: E2ETokens.admin, body: body)
    }

    func service(_ method: String, _ path: String, _ body: Any? = nil) async throws -> TestHTTPResponse {
        try await http.json(method, path, token: E2ETokens.service, body: body)
    }
}

/// Reads a WebSocket event stream with hummingbird's client.
enum WebSocketProbe {
    /// Connects with a bearer token, runs `action` once the first message (the snapshot) has
    /// arrived, and returns the first `count` messages as JSON objects.
    static func collect(port: Int, path: String, token: String, count: Int,
                        action: @escaping @Sendable () async throws -> Void) async throws -> [[String: String]] {
        let messages = Mutex<[[String: String]]>([])
        var headers = HTTPFields()
        headers[.authorization] = "Bearer \(token)"
        try await WebSocketClient.connect(
            url: "ws://127.0.0.1:\(port)\(path)", configuration: .init(additionalHeaders: headers),
            logger: Logger(label: "ws-probe")
        ) { inbound, outbound, _ in
            var acted = false
            for try await message in inbound.messages(maxSize: 1 << 20) {
                guard case .text(let text) = message,
                      let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] else { continue }
                if object["type"] as? String == "heartbeat" { continue }
                let flat = object.compactMapValues { value -> String? in
                    if let string = value as? String { return string }
                    if let bool = value as? Bool { return String(bool) }
                    return nil
                }
                let total = messages.withLock { $0.append(flat); return $0.count }
                if total >= count { break }
                if !acted {
                    acted = true
                    try await action()
                }
            }
            try await outbound.close(.normalClosure, reason: nil)
        }
        return messages.withLock { $0 }
    }
}
