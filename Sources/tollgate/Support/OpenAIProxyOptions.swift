import ArgumentParser
import Foundation
import TollgateCore
import TollgateServer

/// `tollgate serve`'s settings for the OpenAI-compatible metering proxy (`/openai/v1/...`).
struct OpenAIProxyOptions: ParsableArguments {
    @Option(help: "Base URL of the OpenAI-compatible upstream, e.g. https://api.openai.com/v1; serves /openai/v1/... (TOLLGATE_OPENAI_UPSTREAM).")
    var openaiUpstream: String?
    @Option(help: "File holding the upstream's API key (TOLLGATE_OPENAI_UPSTREAM_KEY_FILE; or the key itself in TOLLGATE_OPENAI_UPSTREAM_KEY).")
    var openaiUpstreamKeyFile: String?
    @Option(help: "JSON route table sending models to other upstreams (TOLLGATE_OPENAI_ROUTES); see docs/PROXY.md.")
    var openaiRoutes: String?
    @Option(help: "Output tokens held per choice for a call without max_tokens, and sent upstream as its bound (default \(OpenAIProxyConfiguration.defaultDefaultMaxOutputTokens); TOLLGATE_OPENAI_DEFAULT_MAX_TOKENS).")
    var openaiDefaultMaxTokens: Int64?
    @Option(help: "Input tokens held per image in a request (default \(OpenAIProxyConfiguration.defaultImageTokens); TOLLGATE_OPENAI_IMAGE_TOKENS).")
    var openaiImageTokens: Int64?
    @Option(help: "A streamed call reports a batch every this many output tokens (default \(OpenAIProxyConfiguration.defaultBatchTokens); TOLLGATE_OPENAI_BATCH_TOKENS)...")
    var openaiBatchTokens: Int64?
    @Option(help: "...or this long after the last report (default \(DurationArgument(OpenAIProxyConfiguration.defaultBatchInterval).defaultValueDescription); TOLLGATE_OPENAI_BATCH_INTERVAL).")
    var openaiBatchInterval: DurationArgument?
    @Option(help: "TTL of a call's hold: an unsettled hold (a crash) expires after it (default \(DurationArgument(OpenAIProxyConfiguration.defaultHoldTTL).defaultValueDescription); TOLLGATE_OPENAI_HOLD_TTL).")
    var openaiHoldTTL: DurationArgument?
    @Option(help: "Longest the upstream may stay silent, before its answer or mid-stream (default \(DurationArgument(OpenAIProxyConfiguration.defaultUpstreamTimeout).defaultValueDescription); TOLLGATE_OPENAI_UPSTREAM_TIMEOUT).")
    var openaiUpstreamTimeout: DurationArgument?
    @Option(help: "What an upstream failure charges: release (nothing but output delivered, the default) or charge-input (TOLLGATE_OPENAI_ON_UPSTREAM_FAILURE).")
    var openaiOnUpstreamFailure: String?
    @Flag(help: "Add the running cost to streams as SSE comments, which SDKs ignore (TOLLGATE_OPENAI_STREAM_COST=1).")
    var openaiStreamCost = false

    /// Checked when the command line is parsed, so a bad setting stops `serve` before anything starts.
    func validate() throws {
        _ = try configuration(ProcessInfo.processInfo.environment)
    }

    /// The proxy's settings, or nil when no upstream is given (no proxy routes).
    func configuration(_ environment: [String: String]) throws -> OpenAIProxyConfiguration? {
        guard let url = openaiUpstream ?? environment["TOLLGATE_OPENAI_UPSTREAM"] else {
            let stray = [openaiUpstreamKeyFile, openaiRoutes].contains { $0 != nil }
            guard !stray else { throw ValidationError("the --openai-* settings need --openai-upstream (or TOLLGATE_OPENAI_UPSTREAM)") }
            return nil
        }
        let key: String?
        do {
            if let file = openaiUpstreamKeyFile ?? environment["TOLLGATE_OPENAI_UPSTREAM_KEY_FILE"] {
                key = try OpenAIUpstreamTable.readKey(URL(fileURLWithPath: file))
            } else {
                key = environment["TOLLGATE_OPENAI_UPSTREAM_KEY"].flatMap { $0.isEmpty ? nil : $0 }
            }
            var routes: [OpenAIUpstreamTable.Route] = []
            if let path = openaiRoutes ?? environment["TOLLGATE_OPENAI_ROUTES"] {
                let file = URL(fileURLWithPath: path)
                guard let data = try? Data(contentsOf: file) else { throw ValidationError("cannot read the route table \(path)") }
                routes = try OpenAIUpstreamTable.routes(settings: data, directory: file.deletingLastPathComponent())
            }
            var configuration = OpenAIProxyConfiguration(
                upstreams: OpenAIUpstreamTable(defaultUpstream: try OpenAIUpstream(baseURL: url, apiKey: key), routes: routes))
            configuration.defaultMaxOutputTokens = try tokens(openaiDefaultMaxTokens, environment, "DEFAULT_MAX_TOKENS")
                ?? configuration.defaultMaxOutputTokens
            configuration.imageTokens = try tokens(openaiImageTokens, environment, "IMAGE_TOKENS") ?? configuration.imageTokens
            configuration.batchTokens = try tokens(openaiBatchTokens, environment, "BATCH_TOKENS") ?? configuration.batchTokens
            configuration.batchInterval = try duration(openaiBatchInterval, environment, "BATCH_INTERVAL") ?? configuration.batchInterval
            configuration.holdTTL = try duration(openaiHoldTTL, environment, "HOLD_TTL") ?? configuration.holdTTL
            guard configuration.holdTTL <= .seconds(7 * 24 * 3600) else { throw ValidationError("--openai-hold-ttl is at most 7 days") }
            configuration.upstreamTimeout = try duration(openaiUpstreamTimeout, environment, "UPSTREAM_TIMEOUT") ?? configuration.upstreamTimeout
            if let policy = openaiOnUpstreamFailure ?? environment["TOLLGATE_OPENAI_ON_UPSTREAM_FAILURE"] {
                guard let parsed = UpstreamFailurePolicy(rawValue: policy) else {
                    throw ValidationError("--openai-on-upstream-failure is \(UpstreamFailurePolicy.allCases.map(\.rawValue).joined(separator: " or "))")
                }
                configuration.onUpstreamFailure = parsed
            }
            configuration.streamCost = openaiStreamCost || ["1", "true", "yes"].contains(environment["TOLLGATE_OPENAI_STREAM_COST"] ?? "")
            return configuration
        } catch let error as TollgateError {
            throw ValidationError(error.message)
        }
    }

    private func tokens(_ flag: Int64?, _ environment: [String: String], _ name: String) throws -> Int64? {
        let variable = "TOLLGATE_OPENAI_" + name
        let flagName = "--openai-" + name.lowercased().replacingOccurrences(of: "_", with: "-")
        guard let value = try flag ?? environment[variable].map({ text -> Int64 in
            guard let number = Int64(text) else { throw ValidationError("\(variable) must be a whole number, like \(flagName)") }
            return number
        }) else { return nil }
        let range = OpenAIProxyConfiguration.tokenSettingRange
        guard range.contains(value) else { throw ValidationError("\(flagName) is \(range.lowerBound) to \(range.upperBound)") }
        return value
    }

    private func duration(_ flag: DurationArgument?, _ environment: [String: String], _ name: String) throws -> Duration? {
        if let flag { return flag.duration }
        let variable = "TOLLGATE_OPENAI_" + name
        guard let text = environment[variable] else { return nil }
        guard let value = DurationArgument(argument: text) else {
            throw ValidationError("\(variable) must be a positive duration such as 250ms, 60s or 15m")
        }
        return value.duration
    }
}
