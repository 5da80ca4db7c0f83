import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import TollgateCore

/// Unauthenticated operations routes: liveness, readiness, metrics and the API description.
struct OperationsRoutes: Sendable {
    let engine: Engine
    /// The engine of the gateway's decisions, whose unanswered decisions wait to be voided.
    let gateway: Engine
    let journal: FailOpenJournal?
    let metrics: ServerMetrics

    func register(on routes: RouteTable) {
        routes.get("/healthz", .open) { _, _ in JSON.response(["status": "ok"]) }
        // Ready when Redis answers and runs this build's Lua. While voids or fail-open journal
        // entries wait to be applied, the body says how many (they go by themselves).
        routes.get("/readyz", .open) { _, _ in
            var body: [String: String] = [:]
            let voids = gateway.pendingVoids.waiting
            if voids > 0 { body["pending_voids"] = String(voids) }
            if let journal, journal.count > 0 { body["fail_open_journal"] = String(journal.count) }
            do {
                try await engine.redis.ping()
                guard try await engine.luaMatchesRepository() else {
                    body["status"] = "lua_mismatch"
                    return JSON.response(body, status: .serviceUnavailable)
                }
                body["status"] = "ready"
                return JSON.response(body)
            } catch {
                body["status"] = "redis_unavailable"
                return JSON.response(body, status: .serviceUnavailable)
            }
        }
        routes.get("/metrics", .open) { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                     body: .init(byteBuffer: ByteBuffer(bytes: metrics.render(redis: gateway.redis, engine: gateway, journal: journal))))
        }
        routes.get("/openapi.json", .open) { _, _ in
            guard let url = Bundle.module.url(forResource: "openapi", withExtension: "json"),
                  let data = try? Data(contentsOf: url) else {
                throw APIError(.internalServerError, "internal", "the OpenAPI document is missing from this build")
            }
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
    }
}
