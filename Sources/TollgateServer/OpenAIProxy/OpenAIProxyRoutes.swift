import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import Synchronization
import TollgateCore

/// `/openai/v1/...`: OpenAI's API, metered. A customer's SDK calls it with its Tollgate key
/// (`tgk_...`) as `api_key`; the proxy holds an estimate of the call, forwards it with the
/// upstream's own key, relays the answer (streams as they come), reports token batches as a
/// stream flows, cuts it when a batch is refused and settles on the upstream's usage. The rules
/// are in docs/PROXY.md.
struct OpenAIProxyRoutes: Sendable {
    let proxy: OpenAIProxy
    /// Holds and batches (the gateway's short Redis timeout).
    let gateway: Engine
    /// Settles, releases and key look-ups (the longer one).
    let engine: Engine
    let metrics: ProxyMetrics

    /// Where the routes live; an SDK's `base_url` is `http://HOST:PORT/openai/v1`.
    static let prefix = "/openai/v1"
    /// Every route, as the route table writes them (`OpenAPITests` checks them against the router).
    static let routes = OpenAIEndpoint.allCases.map { "POST \(prefix)\($0.path)" } + ["GET \(prefix)/models", "GET \(prefix)/models/{model}"]

    private var configuration: OpenAIProxyConfiguration { proxy.configuration }

    func register(on routes: RouteTable) {
        for endpoint in OpenAIEndpoint.allCases {
            routes.post(RouterPath(Self.prefix + endpoint.path), .routeCredential(.apiKey)) { request, context in
                try await Self.inOpenAIShape { try await call(endpoint, request, logger: context.logger) }
            }
        }
        routes.get(RouterPath(Self.prefix + "/models"), .routeCredential(.apiKey)) { request, context in
            try await Self.inOpenAIShape { try await models(request, path: "/models", logger: context.logger) }
        }
        routes.get(RouterPath(Self.prefix + "/models/:model"), .routeCredential(.apiKey)) { request, context in
            let model = context.parameters.get("model") ?? ""
            return try await Self.inOpenAIShape {
                try await models(request, path: "/models/" + (model.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? ""),
                                 logger: context.logger)
            }
        }
    }

    /// Answers every error of these routes as OpenAI does, so SDKs raise what they should.
    private static func inOpenAIShape(_ body: () async throws -> Response) async throws -> Response {
        do {
            return try await body()
        } catch let error as OpenAIError {
            throw error
        } catch let error as APIError {
            throw OpenAIError(error)
        } catch let error as TollgateError {
            throw OpenAIError(APIError(error))
        }
    }

    // MARK: Metered calls

    private func call(_ endpoint: OpenAIEndpoint, _ request: Request, logger: Logger) async throws -> Response {
        let start = ContinuousClock.now
        guard let key = Authenticator.bearer(request.headers[.authorization]) else { throw OpenAIError.missingKey }
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: OpenAIProxyConfiguration.maximumRequestBodySize)
        } catch {
            throw APIError(.contentTooLarge, "body_too_large", "the body is larger than \(OpenAIProxyConfiguration.maximumRequestBodySize) bytes")
        }
        let call: ProxiedCall
        do {
            call = try ProxiedCall(endpoint: endpoint, body: Array(body.readableBytesView),
                                   defaultMaxOutputTokens: configuration.defaultMaxOutputTokens,
                                   imageTokens: configuration.imageTokens)
        } catch {
            metrics.recordCall(endpoint, .invalid)
            throw error
        }
        let callID = "oai-" + UUID().uuidString.lowercased()
        let authorized = try await MeteredHold.authorize(call, key: key, callID: callID, ttl: configuration.holdTTL,
                                                        gateway: gateway, settlement: engine)
        guard let hold = authorized.hold else {
            metrics.recordCall(endpoint, .denied)
            throw OpenAIError.denied(authorized.decision, model: call.model)
        }

        let upstream = configuration.upstreams.upstream(for: call.model)
        metrics.recordOverhead(since: start)
        let sent = ContinuousClock.now
        let response: HTTPClientResponse
        do {
            response = try await proxy.client.send(.POST, upstream.url(endpoint.path), key: upstream.apiKey, body: call.upstreamBody,
                                                   streaming: call.stream)
        } catch {
            await settleFailure(call, hold, deliveredOutput: 0, reportedOutput: 0, logger: logger)
            throw Self.logged(error, logger: logger)
        }
        metrics.recordUpstreamLatency(since: sent)

        guard response.status == .ok else {
            // The upstream's own error; nothing was generated.
            let refusal = await Self.upstreamRefusal(response, logger: logger)
            await settleFailure(call, hold, deliveredOutput: 0, reportedOutput: 0, logger: logger)
            throw refusal
        }
        if call.stream {
            return streamed(call, hold, response, request: request, logger: logger)
        }
        return try await answered(call, hold, response, logger: logger)
    }

    /// A call not streamed: the whole answer, then the settle on its usage.
    private func answered(_ call: ProxiedCall, _ hold: MeteredHold, _ response: HTTPClientResponse, logger: Logger) async throws -> Response {
        let answer: ByteBuffer
        do {
            answer = try await response.body.collect(upTo: OpenAIProxyConfiguration.maximumResponseBodySize)
        } catch {
            await settleFailure(call, hold, deliveredOutput: 0, reportedOutput: 0, logger: logger)
            throw Self.logged(UpstreamFailure(error), logger: logger)
        }
        let fields = (try? JSONSerialization.jsonObject(with: Data(answer.readableBytesView))) as? [String: Any] ?? [:]
        let usage = UpstreamUsage(fields["usage"])
            ?? UpstreamUsage(inputTokens: call.estimatedInputTokens, outputTokens: TokenEstimate.output(inAnswer: fields))
        await hold.settle(input: usage.inputTokens, output: usage.outputTokens, reportedOutput: 0, logger: logger)
        metrics.recordTokens(input: usage.inputTokens, output: usage.outputTokens)
        metrics.recordCall(call.endpoint, .completed)
        return Response(status: .ok, headers: [.contentType: response.headers.first(name: "Content-Type") ?? "application/json"],
                        body: .init(byteBuffer: answer))
    }

    /// What an upstream failure charges: the input only when the operator says so, and the
    /// output the client already received.
    private func settleFailure(_ call: ProxiedCall, _ hold: MeteredHold, deliveredOutput: Int64, reportedOutput: Int64, logger: Logger) async {
        let input = configuration.onUpstreamFailure == .chargeInput ? call.estimatedInputTokens : 0
        metrics.recordCall(call.endpoint, .upstreamFailed)
        if input == 0, deliveredOutput == 0, reportedOutput == 0 {
            await hold.release(logger: logger)
        } else {
            await hold.settle(input: input, output: deliveredOutput, reportedOutput: reportedOutput, logger: logger)
            metrics.recordTokens(input: input, output: deliveredOutput)
        }
    }

    // MARK: Streams

    /// How a stream ended, which decides what it is charged.
    private enum StreamEnding: Sendable {
        /// The upstream finished its answer (`[DONE]`; its usage chunk before it).
        case completed
        /// A batch was refused: the client got the error event, the upstream was closed.
        case cut(reason: String)
        /// The upstream failed mid-answer (an error event, a timeout, a broken connection).
        case upstreamFailed
        /// The client read so slowly that the upstream's read timer ran out while the proxy
        /// waited to write to it: the client's doing, settled as a client that left.
        case clientStalled
    }

    /// A streamed call: the upstream's events relayed as they come, batches reported as they
    /// fill, the stream cut at the first refused batch; then the settle.
    private func streamed(_ call: ProxiedCall, _ hold: MeteredHold, _ response: HTTPClientResponse, request: Request, logger: Logger) -> Response {
        let unstarted = UnstartedStreamSettlement { [self] in
            // The upstream's head had arrived: the input is charged, as for any client gone.
            await hold.settle(input: call.estimatedInputTokens, output: 0, reportedOutput: 0, logger: logger)
            metrics.recordTokens(input: call.estimatedInputTokens, output: 0)
            metrics.recordCall(call.endpoint, .clientGone)
        }
        return Response(status: .ok, headers: EventStreamHeaders.fields, body: ResponseBody { writer in
            unstarted.started()
            let progress = StreamProgress(StreamMeter(
                batchTokens: configuration.batchTokens, batchInterval: configuration.batchInterval,
                clientWantsUsage: call.clientWantsUsage, start: .now))
            let out = StreamWriter(writer)
            var ending: StreamEnding?
            do {
                // The client closing its connection cancels the relay (and so the upstream
                // request) at once, rather than at the next write.
                ending = try await request.body.consumeWithCancellationOnInboundClose { _ in
                    try await watchedRelay(call, hold, response, progress, out, logger: logger)
                }
            } catch {
                ending = nil
            }
            let meter = progress.meter
            switch ending {
            case .completed?:
                let input = meter.usage?.inputTokens ?? call.estimatedInputTokens
                // The proxy asked for usage: an upstream that omits it is charged the output
                // bound held, not per-chunk estimates it could keep low.
                let output = meter.usage?.outputTokens ?? max(meter.outputTokens, call.maximumOutputTokens)
                let settled = await hold.settle(input: input, output: output, reportedOutput: meter.reportedOutputTokens,
                                                logger: logger)
                metrics.recordTokens(input: input, output: output)
                metrics.recordCall(call.endpoint, .completed)
                if let done = progress.heldBackDone {
                    // The settled total: what the whole call cost.
                    if let settled, settled.allowed { try await out.write(Self.costComment(settled.amount)) }
                    try await out.write(done)
                }
            case .cut(let reason)?:
                // What the upstream generated until it was closed.
                let input = meter.usage?.inputTokens ?? call.estimatedInputTokens
                await hold.settle(input: input, output: meter.outputTokens, reportedOutput: meter.reportedOutputTokens, logger: logger)
                metrics.recordTokens(input: input, output: meter.outputTokens)
                metrics.recordCut(reason: reason)
                metrics.recordCall(call.endpoint, .cut)
            case .upstreamFailed?:
                await settleFailure(call, hold, deliveredOutput: meter.deliveredOutputTokens,
                                    reportedOutput: meter.reportedOutputTokens, logger: logger)
            case .clientStalled?:
                await settleClientGone(call, hold, meter, logger: logger)
            case nil:
                await settleClientGone(call, hold, meter, logger: logger)
                throw CancellationError()
            }
            try await out.finish()
        })
    }

    /// A stream whose client left (or stalled it): charged what the upstream generated until the
    /// proxy closed it.
    private func settleClientGone(_ call: ProxiedCall, _ hold: MeteredHold, _ meter: StreamMeter, logger: Logger) async {
        let input = meter.usage?.inputTokens ?? call.estimatedInputTokens
        await hold.settle(input: input, output: meter.outputTokens, reportedOutput: meter.reportedOutputTokens, logger: logger)
        metrics.recordTokens(input: input, output: meter.outputTokens)
        metrics.recordCall(call.endpoint, .clientGone)
    }

    /// Relays the upstream's stream, its waits on the upstream timed: when one lasts the
    /// upstream timeout, the relay is stopped and the stream ends with `upstream_timeout`.
    /// Only those waits count: time spent writing to the client or deciding a batch is not
    /// the upstream's silence.
    private func watchedRelay(
        _ call: ProxiedCall, _ hold: MeteredHold, _ response: HTTPClientResponse, _ progress: StreamProgress, _ out: StreamWriter,
        logger: Logger
    ) async throws -> StreamEnding {
        let wait = UpstreamWait()
        let timeout = configuration.upstreamTimeout
        let ending = try await withThrowingTaskGroup(of: StreamEnding?.self) { group in
            group.addTask { try await relay(call, hold, response, progress, out, wait, logger: logger) }
            group.addTask {
                try await wait.watch(timeout: timeout)
                return nil
            }
            defer { group.cancelAll() }
            let first = try await group.next() ?? nil
            guard first == nil else { return first }
            // The watch ended first: the upstream was silent for the timeout. The relay,
            // waiting on it, ends on its cancellation (or has just ended on its own).
            group.cancelAll()
            return try? await group.next() ?? nil
        }
        if let ending { return ending }
        try await out.write(OpenAIError.upstreamTimedOut.streamEvent)
        return .upstreamFailed
    }

    /// Relays the upstream's events until its answer ends, a batch is refused, or it fails.
    /// Throws when the client is gone (a write failed, or the task was cancelled).
    private func relay(
        _ call: ProxiedCall, _ hold: MeteredHold, _ response: HTTPClientResponse, _ progress: StreamProgress, _ out: StreamWriter,
        _ wait: UpstreamWait, logger: Logger
    ) async throws -> StreamEnding {
        var reader = SSEEventReader()
        var iterator = response.body.makeAsyncIterator()
        var batches = 0
        while true {
            if out.longestWrite >= configuration.upstreamTimeout {
                // The client did not read for as long as the upstream may be silent: it is
                // cut as a client that left, not kept holding the upstream's connection.
                try await out.write(OpenAIError.clientTooSlow.streamEvent)
                return .clientStalled
            }
            let next: ByteBuffer?
            do {
                wait.begin()
                defer { wait.end() }
                next = try await iterator.next()
            } catch {
                let failure = UpstreamFailure(error)
                if failure == .cancelled { throw CancellationError() }
                try await out.write(failure == .timedOut ? OpenAIError.upstreamTimedOut.streamEvent : OpenAIError.upstreamBroken.streamEvent)
                return .upstreamFailed
            }
            guard let buffer = next else {
                // No `[DONE]`: complete only if the upstream's usage came (some servers end so).
                if progress.meter.usage != nil, !reader.hasPartialEvent { return .completed }
                try await out.write(OpenAIError.upstreamBroken.streamEvent)
                return .upstreamFailed
            }
            guard let events = reader.read(buffer) else {
                try await out.write(OpenAIError.upstreamBroken.streamEvent)
                return .upstreamFailed
            }
            var pending: [UInt8] = []
            for event in events {
                let step = progress.receive(event)
                if let batch = step.batch {
                    if !pending.isEmpty { try await out.write(pending); pending.removeAll() }
                    batches += 1
                    let decision: Decision
                    do {
                        decision = try await hold.report(outputTokens: batch, batch: batches)
                    } catch {
                        // Redis could not decide: fail closed, as every decision does.
                        try await out.write(OpenAIError(APIError(error)).streamEvent)
                        return .cut(reason: error.code.rawValue)
                    }
                    guard decision.allowed else {
                        try await out.write(OpenAIError.denied(decision, model: call.model).streamEvent)
                        return .cut(reason: decision.reason?.rawValue ?? "denied")
                    }
                    progress.reported(batch)
                    if configuration.streamCost, let charged = decision.capturedOnHold { pending += Self.costComment(charged) }
                }
                if step.done {
                    if configuration.streamCost {
                        // The final cost goes before `[DONE]`, once the settle has it.
                        progress.holdBack(event.raw)
                    } else {
                        pending += event.raw
                    }
                    if !pending.isEmpty { try await out.write(pending) }
                    return .completed
                }
                if step.relay {
                    pending += event.raw
                    progress.delivered()
                }
                if step.upstreamError {
                    logger.warning("OpenAI proxy: the upstream's stream ended with an error", metadata: ["event": "\(event.data ?? "")"])
                    try await out.write(pending + OpenAIError.upstreamStreamError(event.data ?? "").streamEvent)
                    return .upstreamFailed
                }
            }
            if !pending.isEmpty { try await out.write(pending) }
        }
    }

    /// The client's answer to an upstream error status: the upstream's body goes to the log
    /// only (it may name the operator's organization and limits).
    private static func upstreamRefusal(_ response: HTTPClientResponse, logger: Logger) async -> OpenAIError {
        let body = (try? await response.body.collect(upTo: maximumLoggedErrorBody)) ?? ByteBuffer()
        let status = Int(response.status.code)
        logger.warning("OpenAI proxy: the upstream answered an error",
                       metadata: ["status": "\(status)", "body": "\(String(decoding: body.readableBytesView, as: UTF8.self))"])
        return OpenAIError.upstreamAnswered(status: status, body: Array(body.readableBytesView),
                                            retryAfter: response.headers.first(name: "Retry-After"))
    }

    /// Largest upstream error body read (and logged); OpenAI's are a few hundred bytes.
    static let maximumLoggedErrorBody = 64 * 1024

    /// The client's answer to a failed upstream call, its cause logged (it names the upstream's host).
    private static func logged(_ failure: UpstreamFailure, logger: Logger) -> OpenAIError {
        logger.warning("OpenAI proxy: the upstream call failed", metadata: ["error": "\(failure.description)"])
        return failure.answer
    }

    /// The running cost as an SSE comment, which SSE clients skip: `: tollgate-cost 0.000123`.
    static func costComment(_ charged: Money) -> [UInt8] {
        Array(": tollgate-cost \(charged)\n\n".utf8)
    }

    // MARK: Models

    /// `GET /models` (and one model): the upstream's answer, for a caller with an active key.
    private func models(_ request: Request, path: String, logger: Logger) async throws -> Response {
        guard let key = Authenticator.bearer(request.headers[.authorization]) else { throw OpenAIError.missingKey }
        guard try await engine.activeKey(secret: key) != nil else {
            throw OpenAIError(APIError(.unauthorized, DenialReason.unknownKey.rawValue, DenialReason.unknownKey.explanation))
        }
        let upstream = configuration.upstreams.defaultUpstream
        let response: HTTPClientResponse
        do {
            response = try await proxy.client.send(.GET, upstream.url(path), key: upstream.apiKey, body: nil, streaming: false)
        } catch {
            throw Self.logged(error, logger: logger)
        }
        guard response.status == .ok else { throw await Self.upstreamRefusal(response, logger: logger) }
        let body: ByteBuffer
        do {
            body = try await response.body.collect(upTo: OpenAIProxyConfiguration.maximumResponseBodySize)
        } catch {
            throw Self.logged(UpstreamFailure(error), logger: logger)
        }
        return Response(status: .ok,
                        headers: [.contentType: response.headers.first(name: "Content-Type") ?? "application/json"],
                        body: .init(byteBuffer: body))
    }
}

/// Settles a stream whose body never started: a client that left before the response's head
/// was written makes Hummingbird drop the response unwritten, and the body, which settles every
/// other way out, never runs. Settles when the response is dropped (its last reference gone).
private final class UnstartedStreamSettlement: Sendable {
    private let hasStarted = Mutex(false)
    private let settle: @Sendable () async -> Void

    init(settle: @escaping @Sendable () async -> Void) { self.settle = settle }

    /// The body runs: it settles from here on.
    func started() { hasStarted.withLock { $0 = true } }

    deinit {
        guard !hasStarted.withLock({ $0 }) else { return }
        let settle = self.settle
        Task { await settle() }
    }
}

/// A stream's meter, shared by the relay (a child task) and the settle after it.
private final class StreamProgress: Sendable {
    private struct State {
        var meter: StreamMeter
        var heldBackDone: [UInt8]?
    }
    private let state: Mutex<State>

    init(_ meter: StreamMeter) { state = Mutex(State(meter: meter)) }

    var meter: StreamMeter { state.withLock { $0.meter } }
    var heldBackDone: [UInt8]? { state.withLock { $0.heldBackDone } }

    func receive(_ event: SSEEvent) -> StreamMeter.Step { state.withLock { $0.meter.receive(event, at: .now) } }
    func reported(_ tokens: Int64) { state.withLock { $0.meter.reported(tokens, at: .now) } }
    func delivered() { state.withLock { $0.meter.delivered() } }
    func holdBack(_ done: [UInt8]) { state.withLock { $0.heldBackDone = done } }
}

/// The response body writer, for the relay's child task; one writer at a time (the relay,
/// then the settle after it).
private final class StreamWriter: @unchecked Sendable {
    private var writer: any ResponseBodyWriter
    /// The longest a write has waited (a client that does not read makes them wait).
    private(set) var longestWrite: Duration = .zero

    init(_ writer: any ResponseBodyWriter) { self.writer = writer }

    func write(_ bytes: [UInt8]) async throws {
        let started = ContinuousClock.now
        defer { longestWrite = max(longestWrite, ContinuousClock.now - started) }
        try await writer.write(ByteBuffer(bytes: bytes))
    }

    func finish() async throws { try await writer.finish(nil) }
}

/// When the relay began waiting on the upstream for more of its stream, if it waits now; a
/// watch beside the relay ends when one wait has lasted the upstream timeout.
private final class UpstreamWait: Sendable {
    private let since = Mutex<ContinuousClock.Instant?>(nil)

    func begin() { since.withLock { $0 = .now } }
    func end() { since.withLock { $0 = nil } }

    /// Returns once a wait has lasted `timeout`; throws when cancelled.
    func watch(timeout: Duration) async throws {
        // Checked often enough that a timeout ends within a twentieth of itself of when it is due.
        let tick = min(max(timeout / 20, .milliseconds(10)), .milliseconds(250))
        while true {
            try await Task.sleep(for: tick)
            if let started = since.withLock({ $0 }), ContinuousClock.now - started >= timeout { return }
        }
    }
}
