import Crypto
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging
import ServiceLifecycle
import TollgateCore

/// Sends every low-balance alert to a configured URL: `POST` of the alert's JSON (the
/// stream's `alert` message), signed with HMAC-SHA256, retried with exponential backoff.
///
/// Headers: `Tollgate-Timestamp` (unix seconds), `Tollgate-Signature: v1=<hex>` where the hex
/// is HMAC-SHA256(secret, "<timestamp>.<body>"), and `Tollgate-Event-Id: <account>/<entry id>`
/// (the receiver's key for ignoring repeats). With several server processes on one Redis,
/// one of them claims each alert (a `SET NX` in Redis), so it is sent once.
public struct AlertWebhook: Service {
    /// Where and how alerts are sent.
    public struct Configuration: Sendable {
        public var url: URL
        public var secret: String
        /// Tries per alert, the first included.
        public var attempts: Int = 6
        /// The wait before the first retry; each later wait doubles.
        public var firstRetryDelay: Duration = .seconds(1)

        /// Nil unless `url` is an http or https URL.
        public init?(url: String, secret: String) {
            guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme?.lowercased() ?? ""), parsed.host != nil else {
                return nil
            }
            self.url = parsed
            self.secret = secret
        }
    }

    let engine: Engine
    let hub: EventHub
    let configuration: Configuration
    let logger: Logger

    public init(engine: Engine, hub: EventHub, configuration: Configuration, logger: Logger) {
        self.engine = engine
        self.hub = hub
        self.configuration = configuration
        self.logger = logger
    }

    public func run() async throws {
        let subscription = hub.subscribe(.init(account: nil, accountPrefix: "", kinds: ["alert"]))
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                for await item in subscription.items {
                    guard case .event(let event) = item else { continue }
                    group.addTask { await deliver(event) }
                }
            }
        } onGracefulShutdown: {
            subscription.cancel()
        }
    }

    /// The signature header value for a body sent at `timestamp`.
    static func signature(secret: String, timestamp: Int64, body: [UInt8]) -> String {
        var message = Array("\(timestamp).".utf8)
        message += body
        let code = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: Array(secret.utf8)))
        return "v1=" + code.map { String(format: "%02x", $0) }.joined()
    }

    private func deliver(_ event: AccountEvent) async {
        do {
            guard try await engine.claimAlertDelivery(event.account, event.entryID) else { return }
        } catch {
            logger.warning("could not claim an alert for its webhook", metadata: ["error": "\(error)"])
            return
        }
        let body = StreamMessage.alert(event).json
        var delay = configuration.firstRetryDelay
        for attempt in 1...max(1, configuration.attempts) {
            let timestamp = Int64(Date().timeIntervalSince1970)
            var request = URLRequest(url: configuration.url)
            request.httpMethod = "POST"
            request.httpBody = Data(body)
            request.timeoutInterval = 10
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.setValue(String(timestamp), forHTTPHeaderField: "Tollgate-Timestamp")
            request.setValue(Self.signature(secret: configuration.secret, timestamp: timestamp, body: body), forHTTPHeaderField: "Tollgate-Signature")
            request.setValue("\(event.account.rawValue)/\(event.entryID)", forHTTPHeaderField: "Tollgate-Event-Id")
            do {
                let (_, response) = try await URLSession.shared.data(for: request)
                if let status = (response as? HTTPURLResponse)?.statusCode, (200..<300).contains(status) { return }
                logger.info("alert webhook refused", metadata: ["attempt": "\(attempt)", "status": "\((response as? HTTPURLResponse)?.statusCode ?? 0)"])
            } catch {
                logger.info("alert webhook failed", metadata: ["attempt": "\(attempt)", "error": "\(error.localizedDescription)"])
            }
            if attempt == configuration.attempts { break }
            do { try await Task.sleep(for: delay) } catch { return }
            delay *= 2
        }
        logger.warning("alert webhook gave up", metadata: ["account": "\(event.account.rawValue)", "entry": "\(event.entryID)"])
    }
}
