import Foundation
import Hummingbird
import Testing
import TollgateCore
@testable import TollgateServer

/// Every route is registered with an access rule, and the rules keep the surface without a
/// bearer token to the routes meant to be public.
@Suite("route access rules")
struct RouteAccessTests {
    static func proxy() throws -> OpenAIProxy {
        OpenAIProxy(configuration: OpenAIProxyConfiguration(
            upstreams: OpenAIUpstreamTable(defaultUpstream: try OpenAIUpstream(baseURL: "http://127.0.0.1:1/v1", apiKey: nil))))
    }

    @Test("every route the router serves, with and without the OpenAI proxy, has a rule")
    func everyRouteHasARule() async throws {
        let proxy = try Self.proxy()
        let withProxy = try OpenAPITests.servedTable(openAI: proxy)
        try await proxy.client.shutdown()
        for table in [try OpenAPITests.servedTable(), withProxy] {
            #expect(table.count >= 44)
            let unruled = table.filter { $0.access == nil }
            #expect(unruled.isEmpty, "routes registered without an access rule: \(unruled)")
        }
    }

    @Test("a route put on the router past the table is reported without a rule")
    func routeOutsideTheTableIsFound() throws {
        let router = Router(context: TollgateRequestContext.self)
        let auth = Authenticator(adminToken: "tgadm_x", serviceToken: "tgsvc_x", engine: Engine(redis: try OpenAPITests.unreachableRedis()))
        let routes = RouteTable(router: router, auth: auth)
        routes.get("/ruled", .admin) { _, _ in "ruled" }
        router.get("/unruled") { _, _ in "unruled" }
        let served = RouteTable.served(by: router, rules: routes.rules)
        #expect(Set(served.map(\.description)) == ["GET /ruled", "GET /unruled"])
        #expect(served.first { $0.path == "/ruled" }?.access == .admin)
        #expect(served.first { $0.path == "/unruled" }?.access == .some(nil))
    }

    @Test("no token reaches only health, metrics, the API document and the dashboard's files; every account route asks for its owner or the admin")
    func publicSurface() async throws {
        let proxy = try Self.proxy()
        let table = try OpenAPITests.servedTable(openAI: proxy)
        try await proxy.client.shutdown()
        func routes(_ rule: (Access) -> Bool) -> Set<String> {
            Set(table.filter { $0.access.map(rule) ?? false }.map(\.description))
        }
        #expect(routes { $0 == .open } == ["GET /healthz", "GET /readyz", "GET /metrics", "GET /openapi.json", "GET /", "GET /dashboard/{file}"])
        #expect(routes { $0 == .anyToken } == ["GET /v1/whoami"])
        #expect(routes { if case .routeCredential = $0 { return true } else { return false } }
                == Set(["GET /v1/check", "POST /v1/webhooks/{provider}"]).union(OpenAPITests.proxyRoutes))
        let accountRoutes = table.filter { $0.path.hasPrefix("/v1/accounts/{id}") }
        #expect(accountRoutes.count >= 25)
        for route in accountRoutes {
            #expect([Access.admin, .adminOrOwner, .adminOrOwnerMetered].contains(route.access), "\(route): \(route.access.map(String.init(describing:)) ?? "none")")
        }
    }
}
