import Foundation
import Logging
import TollgateCore

/// A proxied call's hold and what it has charged: the engine calls behind the proxy's estimate,
/// batch, cut and settle rules (docs/PROXY.md). Request ids derive from the call's own id, so
/// a retried step is the same step (I3).
struct MeteredHold: Sendable {
    let hold: HoldID
    let model: String
    let callID: String
    /// Answers the reports (the gateway's short Redis timeout: a stream waits on them).
    let gateway: Engine
    /// Answers the settle and release (the longer timeout: nobody waits, and a lost settle
    /// would leave the hold to its TTL).
    let settlement: Engine
    let estimate: [(meter: String, quantity: Int64)]

    /// Opens the hold for `call`'s estimate through every limit and cap of the key and account.
    static func authorize(
        _ call: ProxiedCall, key: String, callID: String, ttl: Duration, gateway: Engine, settlement: Engine
    ) async throws(TollgateError) -> (hold: MeteredHold?, decision: Decision) {
        let usage = try call.estimate.map { (item) throws(TollgateError) in
            try UsageItem(meter: item.meter, model: call.model, quantity: item.quantity)
        }
        let decision = try await gateway.authorize(.key(secret: key), usage: usage, requestID: try RequestID(callID), mode: .hold(ttl: ttl))
        guard decision.allowed, let hold = decision.holdID else { return (nil, decision) }
        return (MeteredHold(hold: hold, model: call.model, callID: callID, gateway: gateway, settlement: settlement,
                            estimate: call.estimate), decision)
    }

    /// Charges `tokens` output tokens against the hold as batch `number`.
    func report(outputTokens tokens: Int64, batch number: Int) async throws(TollgateError) -> Decision {
        try await gateway.report(hold, usage: [try UsageItem(meter: OpenAIMeters.output, model: model, quantity: tokens)],
                                 requestID: try RequestID("\(callID)/b\(number)"))
    }

    /// Settles on the call's final usage, releasing the rest of the hold. Only the balance can
    /// refuse a settle (a final usage beyond the hold and the credit left): then it charges
    /// what the hold covers of it (each item up to the larger of its estimate and what was
    /// reported), and failing that what the batches charged. A settle Redis never answers
    /// leaves the hold to expire at its TTL, keeping what the batches charged.
    @discardableResult
    func settle(input: Int64, output: Int64, reportedOutput: Int64, logger: Logger) async -> Decision? {
        let final = [(OpenAIMeters.input, input), (OpenAIMeters.output, output)]
        let covered = final.map { meter, quantity in
            let held = estimate.first { $0.meter == meter }?.quantity ?? 0
            return (meter, min(quantity, max(held, meter == OpenAIMeters.output ? reportedOutput : 0)))
        }
        var attempts: [[(String, Int64)]?] = [final]
        if covered.map(\.1) != final.map(\.1) { attempts.append(covered) }
        attempts.append(nil)
        for (index, attempt) in attempts.enumerated() {
            do {
                let usage = try attempt.map { items throws(TollgateError) in
                    try items.filter { $0.1 > 0 }.map { (item) throws(TollgateError) in
                        try UsageItem(meter: item.0, model: model, quantity: item.1)
                    }
                }
                let decision = try await retrying { () async throws(TollgateError) in
                    try await settlement.settle(hold, usage: usage, requestID: try RequestID("\(callID)/settle\(index)"))
                }
                if decision.allowed || decision.reason == .holdNotFound { return decision }
            } catch {
                logger.warning("OpenAI proxy: a settle failed; the hold expires at its TTL",
                               metadata: ["hold": "\(hold)", "error": "\(error.code)"])
                return nil
            }
        }
        return nil
    }

    /// Gives the whole hold back (the batches it charged stay charged).
    func release(logger: Logger) async {
        do {
            _ = try await retrying { () async throws(TollgateError) in
                try await settlement.release(hold, requestID: try RequestID("\(callID)/release"))
            }
        } catch {
            logger.warning("OpenAI proxy: a release failed; the hold expires at its TTL",
                           metadata: ["hold": "\(hold)", "error": "\(error.code)"])
        }
    }

    /// Runs an idempotent step again when Redis did not answer (same request id: applied once).
    private func retrying(_ body: () async throws(TollgateError) -> Decision) async throws(TollgateError) -> Decision {
        var attempt = 0
        while true {
            do {
                return try await body()
            } catch where error.code == .redisUnavailable && attempt < 3 {
                attempt += 1
                try? await Task.sleep(for: .milliseconds(100 * attempt))
            }
        }
    }
}
