import ArgumentParser
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import TollgateCore
import TollgatePayments
import TollgateRedis
import TollgateServer

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the HTTP service: gateway checks, the JSON API, metrics.",
        discussion: """
            With no Redis address (--redis, TOLLGATE_REDIS_URL), starts a private redis-server \
            (AOF on, unix socket, data under --data-dir) and stops it on exit. Admin and service \
            tokens come from --admin-token/--service-token or TOLLGATE_ADMIN_TOKEN/\
            TOLLGATE_SERVICE_TOKEN; when not given they are generated once, kept in the data \
            folder and printed at start. SIGTERM or SIGINT stops accepting, finishes requests in \
            flight, then closes Redis.
            """)

    @Option(help: "Address to listen on (TOLLGATE_HOST).") var host: String?
    @Option(help: "Port to listen on; 0 picks a free one (TOLLGATE_PORT).") var port: Int?
    @Option(help: "Redis address; none starts the embedded Redis (TOLLGATE_REDIS_URL).") var redis: String?
    @Option(help: ArgumentHelp(
        "Redis Cluster seed nodes, host:port[,host:port...]; instead of --redis (TOLLGATE_REDIS_CLUSTER).",
        discussion: "A few nodes are enough: the slot map is read from any of them and kept current. See docs/CLUSTER.md.",
        valueName: "nodes")) var redisCluster: String?
    @Option(help: "Folder for the embedded Redis and generated tokens (TOLLGATE_DATA_DIR).") var dataDir: String?
    @Option(help: "Admin token (TOLLGATE_ADMIN_TOKEN).") var adminToken: String?
    @Option(help: "Service token for gateways (TOLLGATE_SERVICE_TOKEN).") var serviceToken: String?
    @Option(help: ArgumentHelp(
        "The secret coupon codes are hashed with, at least 16 characters (TOLLGATE_COUPON_SECRET).",
        discussion: "When not given, generated once and kept in the data folder (coupon.secret): back it up, no code can be redeemed without it.",
        valueName: "secret")) var couponSecret: String?
    @Option(help: "Status of a denied /v1/check: 403, 402 or 429 (TOLLGATE_DENY_STATUS).") var denyStatus: Int?
    @Option(help: "Longest wait for Redis per gateway decision; then 503 engine_unavailable (default 50ms; TOLLGATE_REDIS_TIMEOUT).") var redisTimeout: DurationArgument?
    @Option(help: "Longest wait for Redis on admin, billing and report calls (default 5s; TOLLGATE_ADMIN_REDIS_TIMEOUT).") var adminRedisTimeout: DurationArgument?
    @Option(help: "normal (AOF, fsync every second) or strict (fsync before every reply) (TOLLGATE_DURABILITY).") var durability: String?
    @Flag(help: "Allow gateway calls while Redis cannot answer, journal them and charge them once it is back (TOLLGATE_FAIL_OPEN=1).") var failOpen = false
    @Option(help: "Most calls the fail-open journal keeps before failing closed again (default 100000).") var failOpenJournalLimit: Int?
    @Option(help: "Redis connections (TOLLGATE_REDIS_CONNECTIONS).") var redisConnections: Int?
    @Option(help: "Most client connections served at once (default 10000; TOLLGATE_MAX_CONNECTIONS).") var maxConnections: Int?
    @Option(help: ArgumentHelp(
        "Longest a request's head and body may take to arrive; then 408 request_timeout and the connection closes (default 10s; TOLLGATE_REQUEST_TIMEOUT).",
        discussion: "Counted from a request's first byte (a new connection's first request: from the connection's opening). Responses, SSE and WebSocket streams are not limited by it.",
        valueName: "duration")) var requestTimeout: DurationArgument?
    @Option(help: ArgumentHelp(
        "Longest a keep-alive connection may wait for its next request once its responses are written (default 75s; TOLLGATE_IDLE_TIMEOUT).",
        valueName: "duration")) var idleTimeout: DurationArgument?
    @Option(help: "trace, debug, info, notice, warning, error (TOLLGATE_LOG_LEVEL).") var logLevel: String?
    @Option(help: ArgumentHelp(
        "A proxy (IP address) whose X-Forwarded-For names the client; repeat for several (TOLLGATE_TRUSTED_PROXIES, comma-separated).",
        discussion: "Failed coupon attempts are limited per client address; behind nginx, name it here or every client shares its address.",
        valueName: "ip")) var trustedProxy: [String] = []
    @OptionGroup(title: "Event streams") var eventOptions: EventStreamOptions
    @OptionGroup(title: "OpenAI-compatible metering proxy") var openAIOptions: OpenAIProxyOptions
    @Flag(help: "Seed a demo account with credit, prices, an API key and a dashboard token, and print curl lines.") var demo = false

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        func setting(_ flag: String?, _ name: String) -> String? { flag ?? environment["TOLLGATE_" + name] }
        var logger = Logger(label: "tollgate")
        logger.logLevel = setting(logLevel, "LOG_LEVEL").flatMap(Logger.Level.init(rawValue:)) ?? .info

        let host = setting(host, "HOST") ?? "127.0.0.1"
        let port = port ?? environment["TOLLGATE_PORT"].map({ Int($0) ?? -1 }) ?? 8080
        guard (0...65535).contains(port) else {
            throw ValidationError("the port must be 0 to 65535")
        }
        let deny = denyStatus ?? environment["TOLLGATE_DENY_STATUS"].flatMap { Int($0) } ?? 403
        guard [402, 403, 429].contains(deny) else { throw ValidationError("--deny-status is 402, 403 or 429") }
        let timeout = redisTimeout ?? environment["TOLLGATE_REDIS_TIMEOUT"].flatMap(DurationArgument.init(argument:)) ?? DurationArgument(.milliseconds(50))
        // Admin and report calls read more (ledgers, reports) and nobody waits on them per
        // request of an API: they get longer.
        let adminTimeout = adminRedisTimeout ?? environment["TOLLGATE_ADMIN_REDIS_TIMEOUT"].flatMap(DurationArgument.init(argument:)) ?? DurationArgument(.seconds(5))
        guard let durabilityMode = Durability(rawValue: setting(durability, "DURABILITY") ?? "normal") else {
            throw ValidationError("--durability is normal or strict")
        }
        let failOpen = failOpen || ["1", "true", "yes"].contains(environment["TOLLGATE_FAIL_OPEN"] ?? "")
        let connections = redisConnections ?? environment["TOLLGATE_REDIS_CONNECTIONS"].flatMap { Int($0) } ?? 4
        guard (1...64).contains(connections) else { throw ValidationError("--redis-connections is 1 to 64") }
        let dataDirectory = URL(fileURLWithPath: setting(dataDir, "DATA_DIR") ?? ".tollgate", isDirectory: true).standardizedFileURL

        let embedded: EmbeddedRedis?
        let topology: RedisTopology
        let clusterSeeds = redisCluster ?? (redis == nil ? environment["TOLLGATE_REDIS_CLUSTER"] : nil)
        if let clusterSeeds {
            guard redis == nil else { throw ValidationError("give --redis or --redis-cluster, not both") }
            do { topology = .cluster(try RedisAddress.clusterSeeds(parsing: clusterSeeds)) } catch {
                throw TollgateError(.invalidArgument, error.message)
            }
            embedded = nil
        } else if let url = setting(redis, "REDIS_URL") {
            do { topology = .single(try RedisAddress(parsing: url)) } catch { throw TollgateError(.invalidArgument, error.message) }
            embedded = nil
        } else {
            do {
                let started = try await EmbeddedRedis.start(in: dataDirectory, durability: durabilityMode, logger: logger)
                embedded = started
                topology = .single(started.address)
            } catch let error as ServeError {
                Output.error(error.description)
                throw CLIExit.failure
            }
        }
        // Start-up (loading the Lua) may wait longer than a decision may.
        let address = topology.primaryAddress
        let startup = try topology.client(RedisConfiguration(
            address: address, connectTimeout: .seconds(5), commandTimeout: .seconds(15), connectionCount: 1))
        let coupons: (key: CouponKey, origin: KeptSecret.Origin)
        do {
            coupons = try CouponKey.load(given: setting(couponSecret, "COUPON_SECRET"), directory: dataDirectory)
            _ = try await Engine.start(redis: startup, couponKey: coupons.key)
            for problem in await durabilityMode.problems(of: startup) {
                logger.warning("\(problem)")
            }
            startup.close()
        } catch {
            startup.close()
            embedded?.stop()
            throw error
        }
        let client = try topology.client(RedisConfiguration(
            address: address, connectTimeout: .seconds(2), commandTimeout: adminTimeout.duration, connectionCount: 2))
        var engine = Engine(redis: client)
        engine.couponKey = coupons.key
        // The gateway's decisions: connecting and answering each bounded by --redis-timeout.
        let decisionClient = try topology.client(RedisConfiguration(
            address: address, connectTimeout: timeout.duration, commandTimeout: timeout.duration, connectionCount: connections))
        var gateway = Engine(redis: decisionClient, pendingVoids: try PendingVoidJournal(
            path: dataDirectory.appendingPathComponent("pending-voids.journal").path))
        gateway.voidsUnansweredDecisions = !failOpen
        let journal = try failOpen ? FailOpenJournal(
            path: dataDirectory.appendingPathComponent("fail-open.journal").path,
            capacity: failOpenJournalLimit ?? environment["TOLLGATE_FAIL_OPEN_JOURNAL_LIMIT"].flatMap { Int($0) } ?? 100_000) : nil
        let tokens = try ServerTokens.load(admin: setting(adminToken, "ADMIN_TOKEN"), service: setting(serviceToken, "SERVICE_TOKEN"),
                                           directory: dataDirectory)
        let demoLines = demo ? try await seedDemo(engine) : nil
        var paymentSettings = environment
        if demo, !paymentSettings.keys.contains(where: { $0.hasPrefix("TOLLGATE_DEPOSIT_ADDRESS_") }) {
            // Demo receive addresses so the deposit flow can be tried; never use them for money.
            paymentSettings["TOLLGATE_DEPOSIT_ADDRESS_USDT"] = "TRON:TDemoTollgateUSDTaddressNotReal000"
            paymentSettings["TOLLGATE_DEPOSIT_ADDRESS_USDC"] = "ETHEREUM:0x000000000000000000000000000000000000dEaD"
        }
        let payments = try Self.paymentsConfiguration(paymentSettings)
        var configuration = ServerConfiguration(host: host, port: port, tokens: tokens, denyStatus: deny, payments: payments)
        let proxies = trustedProxy + (environment["TOLLGATE_TRUSTED_PROXIES"] ?? "").split(separator: ",").map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        configuration.trustedProxies = Set(proxies.filter { !$0.isEmpty })
        configuration.failOpen = journal
        configuration.maximumConnections = maxConnections ?? environment["TOLLGATE_MAX_CONNECTIONS"].flatMap { Int($0) } ?? 10_000
        guard configuration.maximumConnections >= 1 else { throw ValidationError("--max-connections is at least 1") }
        // Slow or silent clients give their connection back (see RequestTimeoutHandler).
        let requestLimit = requestTimeout ?? environment["TOLLGATE_REQUEST_TIMEOUT"].flatMap(DurationArgument.init(argument:)) ?? DurationArgument(.seconds(10))
        let idleLimit = idleTimeout ?? environment["TOLLGATE_IDLE_TIMEOUT"].flatMap(DurationArgument.init(argument:)) ?? DurationArgument(.seconds(75))
        configuration.timeouts = RequestTimeouts(request: requestLimit.duration, idle: idleLimit.duration)
        configuration.openAI = try openAIOptions.configuration(environment).map(OpenAIProxy.init(configuration:))
        let redisDescription = embedded.map { "embedded, data in \($0.directory.path)" } ?? topology.description
        let events = EventHub(
            redis: RedisConfiguration(address: address, connectTimeout: .seconds(2), commandTimeout: .seconds(5), connectionCount: 1),
            fallbackAddresses: topology.addresses,
            configuration: try eventOptions.configuration(environment), logger: logger)
        let openAIUpstream = configuration.openAI?.configuration.upstreams.defaultUpstream.baseURL
        let app = TollgateHTTPServer.application(engine: engine, gateway: gateway, configuration: configuration, events: events, logger: logger) { boundPort in
            Self.announce(host: host, port: boundPort, redis: redisDescription, tokens: tokens, dataDirectory: dataDirectory,
                          couponSecretGenerated: coupons.origin == .generated, demo: demoLines,
                          openAIUpstream: openAIUpstream)
        }
        let group = ServiceGroup(configuration: .init(
            // Shut down in reverse: the event streams end first, so the HTTP server is not
            // left waiting for them.
            services: [.init(service: RedisLifecycleService(client: client, embedded: embedded, logger: logger)),
                       .init(service: DecisionClientService(client: decisionClient)),
                       .init(service: RecoveryService(engine: gateway, journal: journal, metrics: TollgateHTTPServer.metrics, logger: logger)),
                       // The upstream client closes after the HTTP server (reverse order), so
                       // proxied calls in flight finish.
                       ] + (configuration.openAI.map { [ServiceGroupConfiguration.ServiceConfiguration(service: $0.client)] } ?? []) + [
                       .init(service: app), .init(service: events)]
                + (try eventOptions.webhook(environment).map {
                    [ServiceGroupConfiguration.ServiceConfiguration(service: AlertWebhook(engine: engine, hub: events, configuration: $0, logger: logger))]
                } ?? []),
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await group.run()
    }

    private struct Demo: Sendable {
        let secret: String
        let accountToken: String
    }

    private func seedDemo(_ engine: Engine) async throws -> Demo {
        let id = try AccountID("demo")
        if (try? await engine.account(id)) == nil {
            _ = try await engine.createAccount(id)
            _ = try await engine.credit(id, amount: try Money(parsing: "25"), requestID: try RequestID("demo-seed"))
        }
        try await engine.setPrice(try PriceKey(meter: "api_call"), try Price(price: try Money(parsing: "0.001"), per: 1))
        try await engine.setPrice(try PriceKey(meter: "tokens.input"), try Price(price: try Money(parsing: "0.15"), per: 1_000_000))
        try await engine.setPrice(try PriceKey(meter: "tokens.output"), try Price(price: try Money(parsing: "0.6"), per: 1_000_000))
        let key = try await engine.createKey(for: id)
        let token = try await engine.createAccountToken(for: id)
        return Demo(secret: key.secret, accountToken: token.token)
    }

    private static func paymentsConfiguration(_ settings: [String: String]) throws(TollgateError) -> PaymentsConfiguration {
        do {
            return try PaymentsConfiguration(environment: settings)
        } catch {
            throw TollgateError(.invalidArgument, error.message)
        }
    }

    private static func announce(
        host: String, port: Int, redis: String, tokens: ServerTokens, dataDirectory: URL, couponSecretGenerated: Bool, demo: Demo?,
        openAIUpstream: String?
    ) {
        let base = "http://\(host.contains(":") ? "[\(host)]" : host):\(port)"
        var lines = ["tollgate listening on \(base) (redis: \(redis))"]
        for name in tokens.generated {
            let value = name == "admin" ? tokens.admin : tokens.service
            lines.append("\(name) token: \(value)  (kept in \(ServerTokens.file(name, in: dataDirectory).path); printed only now)")
        }
        for name in tokens.stored {
            lines.append("\(name) token kept in \(ServerTokens.file(name, in: dataDirectory).path)")
        }
        if let openAIUpstream {
            // What a customer's SDK takes as its base_url.
            lines.append("OpenAI-compatible proxy: base_url \(base)/openai/v1 (upstream \(openAIUpstream))")
        }
        if couponSecretGenerated {
            lines.append("coupon secret generated, kept in \(CouponKey.file(in: dataDirectory).path): back it up with the data")
        }
        // The curl lines show a token only where this start printed it anyway.
        func shown(_ name: String, _ value: String) -> String {
            if tokens.generated.contains(name) { return value }
            if tokens.stored.contains(name) { return "$(cat '\(ServerTokens.file(name, in: dataDirectory).path)')" }
            return "<\(name) token>"
        }
        if let demo {
            lines += [
                "",
                "demo account 'demo' with 25 credits; API key \(demo.secret); dashboard token \(demo.accountToken)",
                "",
                "  curl -s \(base)/v1/authorize -H \"Authorization: Bearer \(shown("service", tokens.service))\" \\",
                "       -d '{\"key\": \"\(demo.secret)\", \"request_id\": \"req-1\", \"usage\": [{\"meter\": \"tokens.input\", \"quantity\": 1200}]}'",
                "  curl -s \(base)/v1/check -H \"Tollgate-Service-Token: \(shown("service", tokens.service))\" -H 'X-Api-Key: \(demo.secret)' -H 'X-Request-Id: req-2' -i",
                "  curl -s \(base)/v1/accounts/demo -H 'Authorization: Bearer \(demo.accountToken)'",
                "  curl -s \(base)/v1/accounts/demo/ledger -H \"Authorization: Bearer \(shown("admin", tokens.admin))\"",
                "  curl -s \(base)/metrics",
            ]
        }
        FileHandle.standardOutput.write(Data((lines.joined(separator: "\n") + "\n").utf8))
    }
}
