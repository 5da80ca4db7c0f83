import Foundation
import TollgateCore

/// The OpenAI routes that are metered, with what their requests and answers look like.
enum OpenAIEndpoint: String, Sendable, CaseIterable {
    case chatCompletions = "chat/completions"
    case completions
    case embeddings

    /// The path below `/openai/v1` and below the upstream's base URL.
    var path: String { "/" + rawValue }
    /// Whether the answer is generated text (charged as output tokens); embeddings are not.
    var producesOutput: Bool { self != .embeddings }
    /// The request field whose tokens are the input.
    var inputField: String {
        switch self {
        case .chatCompletions: return "messages"
        case .completions: return "prompt"
        case .embeddings: return "input"
        }
    }
}

/// One client request, read and checked: what it is for, what it may cost, and the body the
/// upstream gets.
struct ProxiedCall: Sendable {
    let endpoint: OpenAIEndpoint
    let model: String
    let stream: Bool
    /// Whether the client asked for the usage chunk itself (`stream_options.include_usage`);
    /// when it did not, the one the proxy asks for is kept from it.
    let clientWantsUsage: Bool
    let estimatedInputTokens: Int64
    /// The most output tokens the call may produce: the larger of `max_completion_tokens` and
    /// `max_tokens`, else the operator's default (then sent upstream), times the choices
    /// generated (`best_of`, else `n`), times the prompts of a completions call; 0 for embeddings.
    let maximumOutputTokens: Int64
    /// The body the upstream gets: the client's fields as parsed here, re-encoded (one value per
    /// key); a stream's `stream_options` is the client's object with `include_usage: true`.
    let upstreamBody: [UInt8]

    /// Reads a request body; a 400 `invalid_request` for anything that is not a call this
    /// proxy can meter.
    init(endpoint: OpenAIEndpoint, body: [UInt8], defaultMaxOutputTokens: Int64, imageTokens: Int64) throws(APIError) {
        guard let parsed = try? JSONSerialization.jsonObject(with: Data(body)), let fields = parsed as? [String: Any] else {
            throw APIError.badRequest("the body must be a JSON object")
        }
        guard let model = fields["model"] as? String, !model.isEmpty else {
            throw APIError.badRequest("'model' must name a model")
        }
        do {
            _ = try PriceKey(meter: OpenAIMeters.input, model: model)
        } catch {
            throw APIError.badRequest(error.message)
        }
        self.endpoint = endpoint
        self.model = model

        let stream: Bool
        switch fields["stream"] {
        case nil, is NSNull: stream = false
        case let value? where endpoint != .embeddings && Self.isBoolean(value): stream = value as? Bool ?? false
        default: throw APIError.badRequest(endpoint == .embeddings ? "embeddings are not streamed" : "'stream' must be true or false")
        }
        self.stream = stream

        guard let input = fields[endpoint.inputField], !(input is NSNull) else {
            throw APIError.badRequest("'\(endpoint.inputField)' is required")
        }
        switch endpoint {
        case .chatCompletions:
            guard let messages = input as? [Any], !messages.isEmpty, messages.allSatisfy({ $0 is [String: Any] }) else {
                throw APIError.badRequest("'messages' must be a non-empty list of message objects")
            }
        case .completions, .embeddings:
            guard input is String || !((input as? [Any])?.isEmpty ?? true) else {
                throw APIError.badRequest("'\(endpoint.inputField)' must be a string, or a non-empty list of strings or token ids")
            }
        }
        // Over the whole request: the model reads tools, functions, response_format and
        // instructions beside the messages.
        estimatedInputTokens = max(1, TokenEstimate.input(of: fields, imageTokens: imageTokens))

        // The upstream must be bound by what the hold covers: the forwarded body carries the
        // bound when the client gave none the upstream reads.
        var forwarded = fields
        if endpoint.producesOutput {
            let completionBound = try Self.positiveInteger(fields, "max_completion_tokens")
            let tokensBound = try Self.positiveInteger(fields, "max_tokens")
            // Both given: an upstream may honour either, so the hold covers the larger.
            let perChoice = [completionBound, tokensBound].compactMap { $0 }.max() ?? defaultMaxOutputTokens
            switch endpoint {
            case .chatCompletions where completionBound == nil && tokensBound == nil:
                forwarded["max_completion_tokens"] = perChoice
            case .completions where tokensBound == nil:
                // The completions API reads no other bound.
                forwarded["max_tokens"] = perChoice
            default: break
            }
            let choices = try Self.positiveInteger(fields, "n") ?? 1
            let candidates = try Self.positiveInteger(fields, "best_of")
            guard choices <= Self.maximumChoices, (candidates ?? choices) <= Self.maximumChoices else {
                throw APIError.badRequest("'n' and 'best_of' are at most \(Self.maximumChoices)")
            }
            // `best_of` candidates are generated (and billed upstream), `n` of them returned.
            if let candidates, candidates < choices { throw APIError.badRequest("'best_of' must be at least 'n'") }
            let generated = candidates ?? choices
            // A list of prompts is answered prompt by prompt.
            let prompts = endpoint == .completions ? Self.promptCount(input) : 1
            let (perPrompt, overflowed) = perChoice.multipliedReportingOverflow(by: generated)
            let (total, overflowedAgain) = perPrompt.multipliedReportingOverflow(by: prompts)
            guard !overflowed, !overflowedAgain, total <= OpenAIProxyConfiguration.maximumOutputTokensPerCall else {
                throw APIError.badRequest("the call may produce more than \(OpenAIProxyConfiguration.maximumOutputTokensPerCall) output tokens (the bound times 'n' or 'best_of' times the prompts)")
            }
            maximumOutputTokens = total
        } else {
            maximumOutputTokens = 0
        }

        var streamOptions: [String: Any]?
        switch fields["stream_options"] {
        case nil, is NSNull: streamOptions = nil
        case let options as [String: Any] where stream: streamOptions = options
        default: throw APIError.badRequest("'stream_options' is an object, for streamed calls only")
        }
        let asked = streamOptions?["include_usage"].flatMap { Self.isBoolean($0) ? $0 as? Bool : nil }
        clientWantsUsage = asked == true
        // The upstream gets the body as the proxy read it, re-encoded, never the client's bytes:
        // a key the client wrote twice (or a `"stream_options": null` after ours) would be read
        // by the upstream's parser with another value than the one metered here.
        if stream {
            var options = streamOptions ?? [:]
            options["include_usage"] = true
            forwarded["stream_options"] = options
        }
        guard let data = try? JSONSerialization.data(withJSONObject: forwarded) else {
            throw APIError.badRequest("the body cannot be re-encoded")
        }
        upstreamBody = Array(data)
    }

    /// The usage to hold for: the estimated input and the most output.
    var estimate: [(meter: String, quantity: Int64)] {
        [(OpenAIMeters.input, estimatedInputTokens), (OpenAIMeters.output, maximumOutputTokens)].filter { $0.quantity > 0 }
    }

    /// Whether a value JSONSerialization read is `true` or `false`: numbers read as `NSNumber`,
    /// which casts to `Bool` too, so the type tells them apart.
    static func isBoolean(_ value: Any) -> Bool {
        value is Bool && type(of: value) != NSNumber.self
    }

    /// Most choices (`n`, `best_of`) a call may ask for.
    static let maximumChoices: Int64 = 128

    /// Prompts a completions call answers: one per element of a list of prompts (strings or
    /// token arrays), one for a string or a single token array.
    private static func promptCount(_ prompt: Any) -> Int64 {
        guard let prompts = prompt as? [Any], !prompts.allSatisfy({ $0 is Int }) else { return 1 }
        return Int64(prompts.count)
    }

    private static func positiveInteger(_ fields: [String: Any], _ name: String) throws(APIError) -> Int64? {
        guard let value = fields[name], !(value is NSNull) else { return nil }
        guard let number = value as? Int, !isBoolean(value), number >= 1,
              Int64(number) <= OpenAIProxyConfiguration.tokenSettingRange.upperBound else {
            throw APIError.badRequest("'\(name)' must be a whole number from 1 to \(OpenAIProxyConfiguration.tokenSettingRange.upperBound)")
        }
        return Int64(number)
    }
}

/// The meters a proxied call is charged on, per model: `tokens.input@MODEL`, `tokens.output@MODEL`.
enum OpenAIMeters {
    static let input = "tokens.input"
    static let output = "tokens.output"
}
