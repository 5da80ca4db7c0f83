import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Logging
import Metrics
import NIOCore
import Prometheus
import ServiceLifecycle
import TollgateCore
import TollgatePayments
import TollgateRedis

/// How `tollgate serve` listens and answers.
public struct ServerConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var tokens: ServerTokens
    /// The status of a denied `/v1/check` (403, or 402/429 for gateways that pass it through).
    public var denyStatus: Int
    /// How many failed coupon attempts an account or address may make per window.
    public var couponPolicy: CouponGuessingPolicy
    /// Tokens, deposit addresses and payment providers (from TOLLGATE_* variables).
    public var payments: PaymentsConfiguration
    /// Proxies (IP addresses) whose `X-Forwarded-For` names the client, for the coupon
    /// guessing limit per address.
    public var trustedProxies: Set<String> = []

    public init(host: String, port: Int, tokens: ServerTokens, denyStatus: Int = 403,
                couponPolicy: CouponGuessingPolicy = CouponGuessingPolicy(), payments: PaymentsConfiguration) {
        self.host = host
        self.port = port
        self.tokens = tokens
        self.denyStatus = denyStatus
        self.couponPolicy = couponPolicy
        self.payments = payments
    }
}

/// The HTTP service: routes, auth, metrics, as one Hummingbird application.
public enum TollgateHTTPServer {
    private static let metricsRegistry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // Decisions take well under a millisecond: buckets from 100 µs to 1 s.
        factory.defaultDurationHistogramBuckets = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2),
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
            .milliseconds(250), .milliseconds(500), .seconds(1),
        ]
        MetricsSystem.bootstrap(factory)
        return registry
    }()

    /// The application, ready to run as a service. `onListening` gets the bound port. `events`
    /// (run as a service of its own) feeds the live streams.
    public static func application(
        engine: Engine, configuration: ServerConfiguration, events: EventHub, logger: Logger,
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let metrics = ServerMetrics(registry: metricsRegistry)
        let auth = Authenticator(adminToken: configuration.tokens.admin, serviceToken: configuration.tokens.service, engine: engine)
        let router = Router(context: TollgateRequestContext.self)
        router.add(middleware: ErrorLoggingMiddleware())
        GatewayRoutes(engine: engine, auth: auth, metrics: metrics,
                      denyStatus: HTTPResponse.Status(code: configuration.denyStatus), serviceToken: configuration.tokens.service)
            .register(on: router)
        AdminRoutes(engine: engine, auth: auth).register(on: router)
        BillingRoutes(engine: engine, auth: auth, couponPolicy: configuration.couponPolicy,
                      clientAddress: ClientAddressResolver(trustedProxies: configuration.trustedProxies)).register(on: router)
        PaymentRoutes(engine: engine, auth: auth, payments: configuration.payments).register(on: router)
        OperationsRoutes(engine: engine, metrics: metrics).register(on: router)
        EventRoutes(engine: engine, auth: auth, hub: events).register(on: router)
        DashboardRoutes(engine: engine, auth: auth).register(on: router)
        return Application(
            router: router,
            server: .http1WebSocketUpgrade(shouldUpgrade: EventRoutes.webSocketUpgrade(engine: engine, auth: auth, hub: events)),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "tollgate"),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? configuration.port) },
            logger: logger)
    }
}

/// Logs unexpected errors (never request bodies or headers, which may hold secrets) and turns
/// anything that is not already an HTTP error into a JSON 500.
struct ErrorLoggingMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch let error as HTTPError {
            throw APIError(error.status, error.status == .notFound ? "not_found" : "http_error", error.body ?? "\(error.status.reasonPhrase)")
        } catch {
            context.logger.error("request failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            throw APIError(.internalServerError, "internal", "an unexpected error occurred")
        }
    }
}
