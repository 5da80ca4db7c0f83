/// How the proxy guesses token counts before the upstream says them exactly. The input is an
/// upper bound, as it is charged when the upstream reports no usage; the output per chunk is
/// about four characters a token (OpenAI's own rule of thumb for English), as it only sizes a
/// stream's batches. A call the upstream reports usage for is settled on that usage.
enum TokenEstimate {
    static let charactersPerToken = 4

    /// Tokens in a text: one per `charactersPerToken` characters, rounded up.
    static func tokens(inText text: String) -> Int64 {
        let characters = text.unicodeScalars.count
        return Int64((characters + charactersPerToken - 1) / charactersPerToken)
    }

    /// At most the tokens the model reads of a request: the UTF-8 bytes of every key and string
    /// in it (a byte-level BPE token is at least one byte, and the keys' bytes outweigh the chat
    /// format's few tokens per message), one per id of a token array (a prompt given as token
    /// ids), and `imageTokens` per image part in place of its URL (a data URL's bytes are no
    /// measure of an image's tokens).
    static func input(of request: Any, imageTokens: Int64) -> Int64 {
        switch request {
        case let text as String:
            return Int64(text.utf8.count)
        case let array as [Any]:
            if !array.isEmpty, array.allSatisfy({ $0 is Int && !ProxiedCall.isBoolean($0) }) { return Int64(array.count) }
            return array.reduce(0) { $0 + input(of: $1, imageTokens: imageTokens) }
        case let object as [String: Any]:
            var total: Int64 = 0
            for (key, value) in object {
                total += Int64(key.utf8.count)
                if key == "image_url", object["type"] as? String == "image_url" {
                    // Only the URL gives way to the allowance: any text beside it still counts.
                    let rest = (value as? [String: Any])?.filter { $0.key != "url" } ?? [:]
                    total += imageTokens + input(of: rest, imageTokens: imageTokens)
                } else {
                    total += input(of: value, imageTokens: imageTokens)
                }
            }
            return total
        default:
            return 0
        }
    }

    /// Tokens in every string inside a JSON value (an output's text, tool-call arguments).
    static func tokens(inJSON value: Any) -> Int64 {
        switch value {
        case let text as String: return tokens(inText: text)
        case let array as [Any]: return array.reduce(0) { $0 + tokens(inJSON: $1) }
        case let object as [String: Any]: return object.values.reduce(0) { $0 + tokens(inJSON: $1) }
        default: return 0
        }
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
