/// How the proxy guesses token counts before the upstream says them exactly: about four
/// characters a token (OpenAI's own rule of thumb for English), plus the chat format's
/// per-message overhead. Estimates only size a hold and a stream's batches; a call the upstream
/// reports usage for is settled on that usage.
enum TokenEstimate {
    static let charactersPerToken = 4
    /// The chat format wraps each message in a few tokens of its own...
    static let tokensPerMessage: Int64 = 4
    /// ...and primes the reply with a few more.
    static let tokensPerReply: Int64 = 3

    /// Tokens in a text: one per `charactersPerToken` characters, rounded up.
    static func tokens(inText text: String) -> Int64 {
        let characters = text.unicodeScalars.count
        return Int64((characters + charactersPerToken - 1) / charactersPerToken)
    }

    /// Tokens in every string inside a JSON value (message contents, tool definitions, names),
    /// and one per integer of a token array (a prompt given as token ids).
    static func tokens(inJSON value: Any) -> Int64 {
        switch value {
        case let text as String: return tokens(inText: text)
        case let array as [Any]:
            if !array.isEmpty, array.allSatisfy({ $0 is Int }) { return Int64(array.count) }
            return array.reduce(0) { $0 + tokens(inJSON: $1) }
        case let object as [String: Any]: return object.values.reduce(0) { $0 + tokens(inJSON: $1) }
        default: return 0
        }
    }

    /// A chat request's input: its messages (and tools, which the model reads too).
    static func chatInput(messages: [Any], tools: Any?) -> Int64 {
        let content = tokens(inJSON: messages) + (tools.map(tokens(inJSON:)) ?? 0)
        return content + tokensPerMessage * Int64(messages.count) + tokensPerReply
    }

    /// The output in one streamed chunk: per choice, the text it adds (a chat delta's content,
    /// refusal, reasoning and tool-call arguments; a completion's text). Upstreams send about a
    /// token per chunk.
    static func output(inChunk chunk: [String: Any]) -> Int64 {
        output(chunk["choices"], part: "delta")
    }

    /// The output of a whole answer not streamed (for an upstream that reports no usage).
    static func output(inAnswer answer: [String: Any]) -> Int64 {
        output(answer["choices"], part: "message")
    }

    private static func output(_ choices: Any?, part: String) -> Int64 {
        guard let choices = choices as? [Any] else { return 0 }
        var total: Int64 = 0
        for case let choice as [String: Any] in choices {
            if let message = choice[part] as? [String: Any] {
                for field in ["content", "refusal", "reasoning_content", "tool_calls", "function_call"] {
                    if let value = message[field] { total += tokens(inJSON: value) }
                }
            }
            if let text = choice["text"] { total += tokens(inJSON: text) }
        }
        return total
    }
}
