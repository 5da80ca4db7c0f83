import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
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
    /// `--fail-open`: the journal of calls allowed while Redis could not answer; nil (the
    /// default) fails closed with 503 `engine_unavailable`.
    public var failOpen: FailOpenJournal?
    /// The most client connections served at once (`--max-connections`); past it, new ones wait
    /// in the listen backlog until one closes.
    public var maximumConnections = 10_000
    /// How long a request's head and body may take to arrive (`--request-timeout`), and how
    /// long a keep-alive connection may sit idle (`--idle-timeout`): see `RequestTimeouts`.
    public var timeouts = RequestTimeouts()
    /// `--openai-upstream`: the OpenAI-compatible metering proxy at `/openai/v1/...`; nil (the
    /// default) serves no such routes.
    public var openAI: OpenAIProxy?

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

    private static let sharedMetrics = ServerMetrics(registry: metricsRegistry)
    /// Made once the metrics system is bootstrapped (by `metricsRegistry`).
    private static let proxyMetrics: ProxyMetrics = {
        _ = metricsRegistry
        return ProxyMetrics()
    }()

    /// The server's metrics, for services beside the application (`RecoveryService`).
    public static var metrics: ServerMetricsHandle { ServerMetricsHandle(metrics: sharedMetrics) }

    /// The application, ready to run as a service. `onListening` gets the bound port. `events`
    /// (run as a service of its own) feeds the live streams. `gateway`, when given, answers
    /// the gateway's decisions (its Redis client has the short `--redis-timeout`); `engine`
    /// everything else.
    public static func application(
        engine: Engine, gateway: Engine? = nil, configuration: ServerConfiguration, events: EventHub, logger: Logger,
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let metrics = sharedMetrics
        let auth = Authenticator(adminToken: configuration.tokens.admin, serviceToken: configuration.tokens.service, engine: engine)
        let guessing = TokenGuessingLimiter(resolver: ClientAddressResolver(trustedProxies: configuration.trustedProxies), auth: auth)
        let (router, _) = router(engine: engine, gateway: gateway, configuration: configuration, events: events, auth: auth, guessing: guessing)
        return Application(
            router: router,
            server: .timedHTTP1WebSocketUpgrade(
                timeouts: configuration.timeouts, timedOutRequests: metrics.requestTimeouts,
                shouldUpgrade: EventRoutes.webSocketUpgrade(engine: engine, auth: auth, hub: events, guessing: guessing)),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "tollgate",
                                 availableConnectionsDelegate: MaximumAvailableConnections(configuration.maximumConnections)),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? configuration.port) },
            logger: logger)
    }

    /// Every route the server answers (the WebSocket upgrade aside, which the HTTP server
    /// handles before routing), with who may call it: what the API description, the
    /// authorization matrix and their tests are checked against.
    public static func routes(engine: Engine, configuration: ServerConfiguration, events: EventHub) -> [ServedRoute] {
        let auth = Authenticator(adminToken: configuration.tokens.admin, serviceToken: configuration.tokens.service, engine: engine)
        let guessing = TokenGuessingLimiter(resolver: ClientAddressResolver(trustedProxies: configuration.trustedProxies), auth: auth)
        let (router, table) = router(engine: engine, gateway: nil, configuration: configuration, events: events, auth: auth, guessing: guessing)
        return RouteTable.served(by: router, rules: table.rules)
    }

    private static func router(
        engine: Engine, gateway: Engine?, configuration: ServerConfiguration, events: EventHub, auth: Authenticator,
        guessing: TokenGuessingLimiter
    ) -> (Router<TollgateRequestContext>, RouteTable) {
        let metrics = sharedMetrics
        let router = Router(context: TollgateRequestContext.self)
        router.add(middleware: ErrorLoggingMiddleware())
        router.add(middleware: guessing)
        let routes = RouteTable(router: router, auth: auth)
        GatewayRoutes(engine: gateway ?? engine, metrics: metrics,
                      denyStatus: HTTPResponse.Status(code: configuration.denyStatus), serviceToken: configuration.tokens.service,
                      failOpen: configuration.failOpen)
            .register(on: routes)
        AdminRoutes(engine: engine).register(on: routes)
        BillingRoutes(engine: engine, couponPolicy: configuration.couponPolicy,
                      clientAddress: ClientAddressResolver(trustedProxies: configuration.trustedProxies)).register(on: routes)
        PaymentRoutes(engine: engine, payments: configuration.payments).register(on: routes)
        OperationsRoutes(engine: engine, gateway: gateway ?? engine, journal: configuration.failOpen, metrics: metrics).register(on: routes)
        EventRoutes(engine: engine, hub: events).register(on: routes)
        DashboardRoutes(engine: engine).register(on: routes)
        if let proxy = configuration.openAI {
            OpenAIProxyRoutes(proxy: proxy, gateway: gateway ?? engine, engine: engine, metrics: proxyMetrics).register(on: routes)
        }
        return (router, routes)
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
        } catch let error as OpenAIError {
            throw error
        } catch let error as HTTPError {
            throw APIError(error.status, error.status == .notFound ? "not_found" : "http_error", error.body ?? "\(error.status.reasonPhrase)")
        } catch {
            context.logger.error("request failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            throw APIError(.internalServerError, "internal", "an unexpected error occurred")
        }
    }
}
