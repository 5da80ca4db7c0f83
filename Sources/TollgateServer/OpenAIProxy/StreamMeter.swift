import Foundation

/// The usage the upstream reported for a call (`usage` of an answer or of a stream's last chunk).
struct UpstreamUsage: Sendable, Equatable {
    let inputTokens: Int64
    let outputTokens: Int64

    /// Reads `{"prompt_tokens": P, "completion_tokens": C}` (embeddings have no completion
    /// tokens); nil when there is no usable usage.
    init?(_ value: Any?) {
        guard let usage = value as? [String: Any], let rawPrompt = usage["prompt_tokens"], !ProxiedCall.isBoolean(rawPrompt),
              let prompt = rawPrompt as? Int, prompt >= 0 else { return nil }
        let rawCompletion: Any = usage["completion_tokens"].flatMap { $0 is NSNull ? nil : $0 } ?? 0
        guard !ProxiedCall.isBoolean(rawCompletion), let completion = rawCompletion as? Int, completion >= 0 else { return nil }
        inputTokens = Int64(prompt)
        outputTokens = Int64(completion)
    }

    init(inputTokens: Int64, outputTokens: Int64) {
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
    }
}

/// A stream's meter: counts output tokens as chunks arrive (an estimate per chunk, the exact
/// figure once the upstream's usage chunk comes) and says when a batch is due. Pure: the route
/// performs what it says, with the time passed in.
struct StreamMeter: Sendable {
    /// What to do with one upstream event.
    struct Step: Sendable, Equatable {
        /// Relay the event to the client (false: the usage chunk the client did not ask for).
        var relay = true
        /// Output tokens to report against the hold before relaying the event.
        var batch: Int64?
        /// The upstream sent `[DONE]`: the answer is complete.
        var done = false
        /// The upstream sent an error event: end as an upstream failure, telling the client in
        /// the proxy's words (the event itself is not relayed: it may name the operator's account).
        var upstreamError = false
    }

    let batchTokens: Int64
    let batchInterval: Duration
    let clientWantsUsage: Bool

    /// Output tokens counted so far: estimated per chunk, or the upstream's exact figure.
    private(set) var outputTokens: Int64 = 0
    /// Output tokens reported (and charged) against the hold.
    private(set) var reportedOutputTokens: Int64 = 0
    /// Output tokens the client was sent (in chunks relayed).
    private(set) var deliveredOutputTokens: Int64 = 0
    /// The upstream's own usage, when its usage chunk came.
    private(set) var usage: UpstreamUsage?
    private var lastReport: ContinuousClock.Instant

    init(batchTokens: Int64, batchInterval: Duration, clientWantsUsage: Bool, start: ContinuousClock.Instant) {
        self.batchTokens = batchTokens
        self.batchInterval = batchInterval
        self.clientWantsUsage = clientWantsUsage
        self.lastReport = start
    }

    /// Reads one event: what it adds, and whether a batch is due before it goes to the client.
    mutating func receive(_ event: SSEEvent, at now: ContinuousClock.Instant) -> Step {
        var step = Step()
        guard let data = event.data else { return step }
        if event.isDone {
            step.done = true
            return step
        }
        guard let chunk = (try? JSONSerialization.jsonObject(with: Data(data.utf8))) as? [String: Any] else { return step }
        if chunk["error"] != nil {
            step.upstreamError = true
            step.relay = false
            return step
        }
        let added = TokenEstimate.output(inChunk: chunk)
        outputTokens += added
        if let exact = UpstreamUsage(chunk["usage"]) {
            usage = exact
            outputTokens = exact.outputTokens
            // The usage chunk carries no choices; the client sees it only if it asked.
            if (chunk["choices"] as? [Any])?.isEmpty ?? true, !clientWantsUsage { step.relay = false }
        }
        // Only a chunk with new output makes a batch due: the usage chunk comes with the answer
        // complete, and the settle right after it charges the exact figure (a refusal then
        // would cut an answer already delivered).
        let unreported = outputTokens - reportedOutputTokens
        if added > 0, unreported >= batchTokens || lastReport.duration(to: now) >= batchInterval {
            step.batch = unreported
        }
        return step
    }

    /// Notes a batch as charged.
    mutating func reported(_ tokens: Int64, at now: ContinuousClock.Instant) {
        reportedOutputTokens += tokens
        lastReport = now
    }

    /// Notes that the event just read went to the client.
    mutating func delivered() {
        deliveredOutputTokens = outputTokens
    }
}
