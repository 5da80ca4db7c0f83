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

            Every flag falls back to the TOLLGATE_* variable named in its help, then to its \
            default; a flag or variable that does not read stops serve at once (exit 2).
            """)

    @Option(name: ServeSettings.host.name, help: ServeSettings.host.help) var host: String?
    @Option(name: ServeSettings.port.name, help: ServeSettings.port.help) var port: String?
    @Option(name: ServeSettings.redis.name, help: ServeSettings.redis.help) var redis: String?
    @Option(name: ServeSettings.redisCluster.name, help: ServeSettings.redisCluster.help) var redisCluster: String?
    @Option(name: ServeSettings.dataDir.name, help: ServeSettings.dataDir.help) var dataDir: String?
    @Option(name: ServeSettings.adminToken.name, help: ServeSettings.adminToken.help) var adminToken: String?
    @Option(name: ServeSettings.serviceToken.name, help: ServeSettings.serviceToken.help) var serviceToken: String?
    @Option(name: ServeSettings.couponSecret.name, help: ServeSettings.couponSecret.help) var couponSecret: String?
    @Option(name: ServeSettings.denyStatus.name, help: ServeSettings.denyStatus.help) var denyStatus: String?
    @Option(name: ServeSettings.redisTimeout.name, help: ServeSettings.redisTimeout.help) var redisTimeout: String?
    @Option(name: ServeSettings.adminRedisTimeout.name, help: ServeSettings.adminRedisTimeout.help) var adminRedisTimeout: String?
    @Option(name: ServeSettings.durability.name, help: ServeSettings.durability.help) var durability: String?
    @Flag(name: ServeSettings.failOpen.name, help: ServeSettings.failOpen.help) var failOpen = false
    @Option(name: ServeSettings.failOpenJournalLimit.name, help: ServeSettings.failOpenJournalLimit.help) var failOpenJournalLimit: String?
    @Option(name: ServeSettings.redisConnections.name, help: ServeSettings.redisConnections.help) var redisConnections: String?
    @Option(name: ServeSettings.maxConnections.name, help: ServeSettings.maxConnections.help) var maxConnections: String?
    @Option(name: ServeSettings.requestTimeout.name, help: ServeSettings.requestTimeout.help) var requestTimeout: String?
    @Option(name: ServeSettings.idleTimeout.name, help: ServeSettings.idleTimeout.help) var idleTimeout: String?
    @Option(name: ServeSettings.logLevel.name, help: ServeSettings.logLevel.help) var logLevel: String?
    @Option(name: ServeSettings.trustedProxy.name, help: ServeSettings.trustedProxy.help) var trustedProxy: [String] = []
    @OptionGroup(title: "Event streams") var eventOptions: EventStreamOptions
    @OptionGroup(title: "OpenAI-compatible metering proxy") var openAIOptions: OpenAIProxyOptions
    @Flag(help: "Seed a demo account with credit, prices, an API key and a dashboard token, and print curl lines.") var demo = false

    /// Every setting read and checked when the command line is parsed, so a bad flag or
    /// variable stops `serve` before anything starts.
    func validate() throws {
        _ = try settings(ProcessInfo.processInfo.environment)
    }

    /// The settings this command runs with, resolved from flags, `TOLLGATE_*` and defaults.
    private struct Resolved {
        var host: String
        var port: Int
        var redis: String?
        var redisCluster: String?
        var dataDirectory: URL
        var adminToken: String?
        var serviceToken: String?
        var couponSecret: String?
        var denyStatus: Int
        var redisTimeout: Duration
        var adminRedisTimeout: Duration
        var durability: Durability
        var failOpen: Bool
        var failOpenJournalLimit: Int
        var redisConnections: Int
        var maxConnections: Int
        var timeouts: RequestTimeouts
        var logLevel: Logger.Level
        var trustedProxies: Set<String>
    }

    private func settings(_ environment: [String: String]) throws(TollgateError) -> Resolved {
        let all = ServeSettings.self
        // A --redis flag wins over a cluster named only in the environment.
        let cluster = redisCluster != nil || redis == nil ? try all.redisCluster.value(redisCluster, environment) : nil
        guard cluster == nil || redis == nil else { throw TollgateError(.invalidArgument, "give --redis or --redis-cluster, not both") }
        return Resolved(
            host: try all.host.required(host, environment),
            port: try all.port.required(port, environment),
            redis: cluster == nil ? try all.redis.value(redis, environment) : nil,
            redisCluster: cluster,
            dataDirectory: URL(fileURLWithPath: try all.dataDir.required(dataDir, environment), isDirectory: true).standardizedFileURL,
            adminToken: try all.adminToken.value(adminToken, environment),
            serviceToken: try all.serviceToken.value(serviceToken, environment),
            couponSecret: try all.couponSecret.value(couponSecret, environment),
            denyStatus: try all.denyStatus.required(denyStatus, environment),
            redisTimeout: try all.redisTimeout.required(redisTimeout, environment),
            // Admin and report calls read more (ledgers, reports) and nobody waits on them per
            // request of an API: they get longer.
            adminRedisTimeout: try all.adminRedisTimeout.required(adminRedisTimeout, environment),
            durability: Durability(rawValue: try all.durability.required(durability, environment)) ?? .normal,
            failOpen: try all.failOpen.isOn(failOpen, environment),
            failOpenJournalLimit: try all.failOpenJournalLimit.required(failOpenJournalLimit, environment),
            redisConnections: try all.redisConnections.required(redisConnections, environment),
            maxConnections: try all.maxConnections.required(maxConnections, environment),
            // Slow or silent clients give their connection back (see RequestTimeoutHandler).
            timeouts: RequestTimeouts(request: try all.requestTimeout.required(requestTimeout, environment),
                                      idle: try all.idleTimeout.required(idleTimeout, environment)),
            logLevel: Logger.Level(rawValue: try all.logLevel.required(logLevel, environment)) ?? .info,
            trustedProxies: try trustedProxies(environment))
    }

    /// Every `--trusted-proxy` given, else the variable's comma-separated list.
    private func trustedProxies(_ environment: [String: String]) throws(TollgateError) -> Set<String> {
        guard !trustedProxy.isEmpty else { return Set(try ServeSettings.trustedProxy.required(nil, environment)) }
        var proxies: Set<String> = []
        for flag in trustedProxy { proxies.formUnion(try ServeSettings.trustedProxy.required(flag, environment)) }
        return proxies
    }

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let settings = try settings(environment)
        var logger = Logger(label: "tollgate")
        logger.logLevel = settings.logLevel
        let host = settings.host
        let port = settings.port
        let timeout = settings.redisTimeout
        let durabilityMode = settings.durability
        let failOpen = settings.failOpen
        let dataDirectory = settings.dataDirectory

        let embedded: EmbeddedRedis?
        let topology: RedisTopology
        if let clusterSeeds = settings.redisCluster {
            do { topology = .cluster(try RedisAddress.clusterSeeds(parsing: clusterSeeds)) } catch {
                throw TollgateError(.invalidArgument, error.message)
            }
            embedded = nil
        } else if let url = settings.redis {
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
            coupons = try CouponKey.load(given: settings.couponSecret, directory: dataDirectory)
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
            address: address, connectTimeout: .seconds(2), commandTimeout: settings.adminRedisTimeout, connectionCount: 2))
        var engine = Engine(redis: client)
        engine.couponKey = coupons.key
        // The gateway's decisions: connecting and answering each bounded by --redis-timeout.
        let decisionClient = try topology.client(RedisConfiguration(
            address: address, connectTimeout: timeout, commandTimeout: timeout, connectionCount: settings.redisConnections))
        var gateway = Engine(redis: decisionClient, pendingVoids: try PendingVoidJournal(
            path: dataDirectory.appendingPathComponent("pending-voids.journal").path))
        gateway.voidsUnansweredDecisions = !failOpen
        let journal = try failOpen ? FailOpenJournal(
            path: dataDirectory.appendingPathComponent("fail-open.journal").path,
            capacity: settings.failOpenJournalLimit) : nil
        let tokens = try ServerTokens.load(admin: settings.adminToken, service: settings.serviceToken,
                                           directory: dataDirectory)
        let demoLines = demo ? try await seedDemo(engine) : nil
        var paymentSettings = environment
        if demo, !paymentSettings.keys.contains(where: { $0.hasPrefix("TOLLGATE_DEPOSIT_ADDRESS_") }) {
            // Demo receive addresses so the deposit flow can be tried; never use them for money.
            paymentSettings["TOLLGATE_DEPOSIT_ADDRESS_USDT"] = "TRON:TDemoTollgateUSDTaddressNotReal000"
            paymentSettings["TOLLGATE_DEPOSIT_ADDRESS_USDC"] = "ETHEREUM:0x000000000000000000000000000000000000dEaD"
        }
        let payments = try Self.paymentsConfiguration(paymentSettings)
        var configuration = ServerConfiguration(host: host, port: port, tokens: tokens, denyStatus: settings.denyStatus, payments: payments)
        configuration.trustedProxies = settings.trustedProxies
        configuration.failOpen = journal
        configuration.maximumConnections = settings.maxConnections
        configuration.timeouts = settings.timeouts
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
