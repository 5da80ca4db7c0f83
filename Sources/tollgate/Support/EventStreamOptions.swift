import ArgumentParser
import TollgateServer

/// `tollgate serve`'s settings for the live event streams and low-balance alert webhooks.
struct EventStreamOptions: ParsableArguments {
    @Option(help: "Events a stream subscriber may have waiting before it is disconnected as lagging (TOLLGATE_EVENTS_BUFFER).")
    var eventsBuffer: Int?
    @Option(help: "Keep-alive interval of idle streams, e.g. 15s (TOLLGATE_EVENTS_HEARTBEAT).")
    var eventsHeartbeat: DurationArgument?
    @Option(help: "How far back Last-Event-ID may resume, e.g. 24h (TOLLGATE_EVENTS_RETENTION).")
    var eventsRetention: DurationArgument?
    @Option(help: "URL that low-balance alerts are POSTed to (TOLLGATE_ALERT_WEBHOOK_URL).")
    var alertWebhookURL: String?
    @Option(help: "Secret for the alert webhook's HMAC-SHA256 signature (TOLLGATE_ALERT_WEBHOOK_SECRET).")
    var alertWebhookSecret: String?

    func configuration(_ environment: [String: String]) throws -> EventHub.Configuration {
        let buffer = eventsBuffer ?? environment["TOLLGATE_EVENTS_BUFFER"].flatMap { Int($0) } ?? 1024
        guard (1...1_000_000).contains(buffer) else { throw ValidationError("--events-buffer is 1 to 1000000") }
        let heartbeat = eventsHeartbeat ?? environment["TOLLGATE_EVENTS_HEARTBEAT"].flatMap(DurationArgument.init(argument:))
            ?? DurationArgument(.seconds(15))
        let retention = eventsRetention ?? environment["TOLLGATE_EVENTS_RETENTION"].flatMap(DurationArgument.init(argument:))
            ?? DurationArgument(.seconds(24 * 3600))
        return EventHub.Configuration(bufferSize: buffer, heartbeat: heartbeat.duration, retention: retention.duration)
    }

    /// The alert webhook, when a URL is set (a secret is then required).
    func webhook(_ environment: [String: String]) throws -> AlertWebhook.Configuration? {
        guard let url = alertWebhookURL ?? environment["TOLLGATE_ALERT_WEBHOOK_URL"] else { return nil }
        guard let secret = alertWebhookSecret ?? environment["TOLLGATE_ALERT_WEBHOOK_SECRET"], !secret.isEmpty else {
            throw ValidationError("--alert-webhook-url needs --alert-webhook-secret (or TOLLGATE_ALERT_WEBHOOK_SECRET)")
        }
        guard let parsed = AlertWebhook.Configuration(url: url, secret: secret) else {
            throw ValidationError("--alert-webhook-url must be an http or https URL")
        }
        return parsed
    }
}
