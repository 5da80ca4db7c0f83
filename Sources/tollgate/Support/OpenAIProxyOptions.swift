import ArgumentParser
import Foundation
import TollgateCore
import TollgateServer

/// `tollgate serve`'s settings for the OpenAI-compatible metering proxy (`/openai/v1/...`).
struct OpenAIProxyOptions: ParsableArguments {
    @Option(name: ServeSettings.openAIUpstream.name, help: ServeSettings.openAIUpstream.help) var openaiUpstream: String?
    @Option(name: ServeSettings.openAIUpstreamKeyFile.name, help: ServeSettings.openAIUpstreamKeyFile.help) var openaiUpstreamKeyFile: String?
    @Option(name: ServeSettings.openAIRoutes.name, help: ServeSettings.openAIRoutes.help) var openaiRoutes: String?
    @Option(name: ServeSettings.openAIDefaultMaxTokens.name, help: ServeSettings.openAIDefaultMaxTokens.help) var openaiDefaultMaxTokens: String?
    @Option(name: ServeSettings.openAIImageTokens.name, help: ServeSettings.openAIImageTokens.help) var openaiImageTokens: String?
    @Option(name: ServeSettings.openAIBatchTokens.name, help: ServeSettings.openAIBatchTokens.help) var openaiBatchTokens: String?
    @Option(name: ServeSettings.openAIBatchInterval.name, help: ServeSettings.openAIBatchInterval.help) var openaiBatchInterval: String?
    @Option(name: ServeSettings.openAIHoldTTL.name, help: ServeSettings.openAIHoldTTL.help) var openaiHoldTTL: String?
    @Option(name: ServeSettings.openAIUpstreamTimeout.name, help: ServeSettings.openAIUpstreamTimeout.help) var openaiUpstreamTimeout: String?
    @Option(name: ServeSettings.openAIOnUpstreamFailure.name, help: ServeSettings.openAIOnUpstreamFailure.help) var openaiOnUpstreamFailure: String?
    @Flag(name: ServeSettings.openAIStreamCost.name, help: ServeSettings.openAIStreamCost.help) var openaiStreamCost = false

    /// Checked when the command line is parsed, so a bad setting stops `serve` before anything starts.
    func validate() throws {
        _ = try configuration(ProcessInfo.processInfo.environment)
    }

    /// The proxy's settings, or nil when no upstream is given (no proxy routes).
    func configuration(_ environment: [String: String]) throws(TollgateError) -> OpenAIProxyConfiguration? {
        let settings = ServeSettings.self
        guard let url = try settings.openAIUpstream.value(openaiUpstream, environment) else {
            let stray = [openaiUpstreamKeyFile, openaiRoutes].contains { $0 != nil }
            guard !stray else { throw TollgateError(.invalidArgument, "the --openai-* settings need --openai-upstream (or TOLLGATE_OPENAI_UPSTREAM)") }
            return nil
        }
        let key: String?
        if let file = try settings.openAIUpstreamKeyFile.value(openaiUpstreamKeyFile, environment) {
            key = try OpenAIUpstreamTable.readKey(URL(fileURLWithPath: file))
        } else {
            key = environment[settings.openAIUpstreamKeyVariable].flatMap { $0.isEmpty ? nil : $0 }
        }
        var routes: [OpenAIUpstreamTable.Route] = []
        if let path = try settings.openAIRoutes.value(openaiRoutes, environment) {
            let file = URL(fileURLWithPath: path)
            guard let data = try? Data(contentsOf: file) else { throw TollgateError(.invalidArgument, "cannot read the route table \(path)") }
            routes = try OpenAIUpstreamTable.routes(settings: data, directory: file.deletingLastPathComponent())
        }
        var configuration = OpenAIProxyConfiguration(
            upstreams: OpenAIUpstreamTable(defaultUpstream: try OpenAIUpstream(baseURL: url, apiKey: key), routes: routes))
        configuration.defaultMaxOutputTokens = try settings.openAIDefaultMaxTokens.required(openaiDefaultMaxTokens, environment)
        configuration.imageTokens = try settings.openAIImageTokens.required(openaiImageTokens, environment)
        configuration.batchTokens = try settings.openAIBatchTokens.required(openaiBatchTokens, environment)
        configuration.batchInterval = try settings.openAIBatchInterval.required(openaiBatchInterval, environment)
        configuration.holdTTL = try settings.openAIHoldTTL.required(openaiHoldTTL, environment)
        configuration.upstreamTimeout = try settings.openAIUpstreamTimeout.required(openaiUpstreamTimeout, environment)
        let policy = try settings.openAIOnUpstreamFailure.required(openaiOnUpstreamFailure, environment)
        configuration.onUpstreamFailure = UpstreamFailurePolicy(rawValue: policy) ?? .release
        configuration.streamCost = try settings.openAIStreamCost.isOn(openaiStreamCost, environment)
        return configuration
    }
}
