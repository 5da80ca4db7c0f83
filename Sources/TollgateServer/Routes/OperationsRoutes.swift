import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import TollgateCore

/// Unauthenticated operations routes: liveness, readiness, metrics and the API description.
struct OperationsRoutes: Sendable {
    let engine: Engine
    let metrics: ServerMetrics

    func register(on router: Router<TollgateRequestContext>) {
        router.get("/healthz") { _, _ in JSON.response(["status": "ok"]) }
        router.get("/readyz") { _, _ in
            do {
                try await engine.redis.ping()
                guard try await engine.luaMatchesRepository() else {
                    return JSON.response(["status": "lua_mismatch"], status: .serviceUnavailable)
                }
                return JSON.response(["status": "ready"])
            } catch {
                return JSON.response(["status": "redis_unavailable"], status: .serviceUnavailable)
            }
        }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                     body: .init(byteBuffer: ByteBuffer(bytes: metrics.render(redis: engine.redis))))
        }
        router.get("/openapi.json") { _, _ in
            guard let url = Bundle.module.url(forResource: "openapi", withExtension: "json"),
                  let data = try? Data(contentsOf: url) else {
                throw APIError(.internalServerError, "internal", "the OpenAPI document is missing from this build")
            }
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
    }
}
