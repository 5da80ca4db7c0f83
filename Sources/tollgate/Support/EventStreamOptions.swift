import ArgumentParser
import Foundation
import TollgateServer

/// `tollgate serve`'s settings for the live event streams and low-balance alert webhooks.
struct EventStreamOptions: ParsableArguments {
    @Option(help: "Events a stream subscriber may have waiting before it is disconnected as lagging (TOLLGATE_EVENTS_BUFFER).")
    var eventsBuffer: Int?
    @Option(help: "Keep-alive interval of idle streams, e.g. 15s (TOLLGATE_EVENTS_HEARTBEAT).")
    var eventsHeartbeat: DurationArgument?
    @Option(help: "How far back Last-Event-ID may resume, e.g. 24h (TOLLGATE_EVENTS_RETENTION).")
    var eventsRetention: DurationArgument?
    @Option(help: "Event streams (SSE and WebSocket) this process serves at once; more get 429 (TOLLGATE_EVENTS_MAX_STREAMS, default 10000).")
    var eventsMaxStreams: Int?
    @Option(help: "Event streams the tokens of one account may hold open together; more get 429 (TOLLGATE_EVENTS_MAX_STREAMS_PER_ACCOUNT, default 32).")
    var eventsMaxStreamsPerAccount: Int?
    @Option(help: "URL that low-balance alerts are POSTed to (TOLLGATE_ALERT_WEBHOOK_URL).")
    var alertWebhookURL: String?
    @Option(help: "Secret for the alert webhook's HMAC-SHA256 signature (TOLLGATE_ALERT_WEBHOOK_SECRET).")
    var alertWebhookSecret: String?

    /// Checked when the command line is parsed, so a bad setting stops `serve` before anything starts.
    func validate() throws {
        _ = try configuration(ProcessInfo.processInfo.environment)
    }

    func configuration(_ environment: [String: String]) throws -> EventHub.Configuration {
        let buffer = try Self.integer(eventsBuffer, environment, "TOLLGATE_EVENTS_BUFFER", "--events-buffer") ?? 1024
        guard (1...1_000_000).contains(buffer) else { throw ValidationError("--events-buffer is 1 to 1000000") }
        let heartbeat = try Self.duration(eventsHeartbeat, environment, "TOLLGATE_EVENTS_HEARTBEAT", "--events-heartbeat") ?? .seconds(15)
        guard heartbeat >= .seconds(1) && heartbeat <= .seconds(3600) else {
            throw ValidationError("--events-heartbeat is 1s to 1h (TOLLGATE_EVENTS_HEARTBEAT too)")
        }
        let retention = try Self.duration(eventsRetention, environment, "TOLLGATE_EVENTS_RETENTION", "--events-retention") ?? .seconds(24 * 3600)
        guard retention >= .seconds(60) else {
            throw ValidationError("--events-retention is at least 1m (TOLLGATE_EVENTS_RETENTION too)")
        }
        let maxStreams = try Self.integer(eventsMaxStreams, environment, "TOLLGATE_EVENTS_MAX_STREAMS", "--events-max-streams") ?? 10_000
        guard (1...1_000_000).contains(maxStreams) else { throw ValidationError("--events-max-streams is 1 to 1000000") }
        let perToken = try Self.integer(eventsMaxStreamsPerAccount, environment, "TOLLGATE_EVENTS_MAX_STREAMS_PER_ACCOUNT",
                                        "--events-max-streams-per-account") ?? 32
        guard (1...maxStreams).contains(perToken) else {
            throw ValidationError("--events-max-streams-per-account is 1 to --events-max-streams (\(maxStreams))")
        }
        return EventHub.Configuration(bufferSize: buffer, heartbeat: heartbeat, retention: retention,
                                      maxStreams: maxStreams, maxStreamsPerAccount: perToken)
    }

    /// The flag's value, else the variable's (which must then be a whole number).
    private static func integer(_ flag: Int?, _ environment: [String: String], _ variable: String, _ name: String) throws -> Int? {
        if let flag { return flag }
        guard let text = environment[variable] else { return nil }
        guard let value = Int(text) else { throw ValidationError("\(variable) must be a whole number, like \(name)") }
        return value
    }

    /// The flag's value, else the variable's (which must then be a duration such as 15s).
    private static func duration(_ flag: DurationArgument?, _ environment: [String: String], _ variable: String,
                                 _ name: String) throws -> Duration? {
        if let flag { return flag.duration }
        guard let text = environment[variable] else { return nil }
        guard let value = DurationArgument(argument: text) else {
            throw ValidationError("\(variable) must be a positive duration such as 15s, 2m or 24h, like \(name)")
        }
        return value.duration
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
