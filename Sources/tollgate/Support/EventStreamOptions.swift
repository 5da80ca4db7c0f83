import ArgumentParser
import Foundation
import TollgateCore
import TollgateServer

/// `tollgate serve`'s settings for the live event streams and low-balance alert webhooks.
struct EventStreamOptions: ParsableArguments {
    @Option(name: ServeSettings.eventsBuffer.name, help: ServeSettings.eventsBuffer.help) var eventsBuffer: String?
    @Option(name: ServeSettings.eventsHeartbeat.name, help: ServeSettings.eventsHeartbeat.help) var eventsHeartbeat: String?
    @Option(name: ServeSettings.eventsRetention.name, help: ServeSettings.eventsRetention.help) var eventsRetention: String?
    @Option(name: ServeSettings.eventsMaxStreams.name, help: ServeSettings.eventsMaxStreams.help) var eventsMaxStreams: String?
    @Option(name: ServeSettings.eventsMaxStreamsPerAccount.name, help: ServeSettings.eventsMaxStreamsPerAccount.help)
    var eventsMaxStreamsPerAccount: String?
    @Option(name: ServeSettings.alertWebhookURL.name, help: ServeSettings.alertWebhookURL.help) var alertWebhookURL: String?
    @Option(name: ServeSettings.alertWebhookSecret.name, help: ServeSettings.alertWebhookSecret.help) var alertWebhookSecret: String?

    /// Checked when the command line is parsed, so a bad setting stops `serve` before anything starts.
    func validate() throws {
        _ = try configuration(ProcessInfo.processInfo.environment)
        _ = try webhook(ProcessInfo.processInfo.environment)
    }

    func configuration(_ environment: [String: String]) throws(TollgateError) -> EventHub.Configuration {
        let maxStreams = try ServeSettings.eventsMaxStreams.required(eventsMaxStreams, environment)
        let perAccount = try ServeSettings.eventsMaxStreamsPerAccount.required(eventsMaxStreamsPerAccount, environment)
        guard perAccount <= maxStreams else {
            throw TollgateError(.invalidArgument, "--events-max-streams-per-account is at most --events-max-streams (\(maxStreams)); got \(perAccount)")
        }
        return EventHub.Configuration(
            bufferSize: try ServeSettings.eventsBuffer.required(eventsBuffer, environment),
            heartbeat: try ServeSettings.eventsHeartbeat.required(eventsHeartbeat, environment),
            retention: try ServeSettings.eventsRetention.required(eventsRetention, environment),
            maxStreams: maxStreams, maxStreamsPerAccount: perAccount)
    }

    /// The alert webhook, when a URL is set (a secret is then required).
    func webhook(_ environment: [String: String]) throws(TollgateError) -> AlertWebhook.Configuration? {
        guard let url = try ServeSettings.alertWebhookURL.value(alertWebhookURL, environment) else { return nil }
        guard let secret = try ServeSettings.alertWebhookSecret.value(alertWebhookSecret, environment) else {
            throw TollgateError(.invalidArgument, "--alert-webhook-url needs --alert-webhook-secret (or TOLLGATE_ALERT_WEBHOOK_SECRET)")
        }
        guard let parsed = AlertWebhook.Configuration(url: url, secret: secret) else {
            throw TollgateError(.invalidArgument, "--alert-webhook-url must be an http or https URL")
        }
        return parsed
    }
}
