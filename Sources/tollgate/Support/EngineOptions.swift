import ArgumentParser
import Foundation
import TollgateCore
import TollgateRedis

/// Where Redis is and how long to wait for it; shared by every command that uses the engine.
struct EngineOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "Redis address: redis://[user:password@]host:port[/db] or unix:///path/to/socket.",
        discussion: "Defaults to \(ServeSettings.redis.variable), else redis://127.0.0.1:6379.",
        valueName: "url"))
    var redis: String?

    @Option(name: .long, help: ArgumentHelp(
        "Redis Cluster seed nodes: host:port[,host:port...] (any few nodes; the rest are discovered).",
        discussion: "Defaults to \(ServeSettings.redisCluster.variable). Use instead of --redis; see docs/CLUSTER.md.",
        valueName: "nodes"))
    var redisCluster: String?

    @Option(name: .long, help: ArgumentHelp("How long to wait for Redis per command, e.g. 500ms or 2s.", valueName: "duration"))
    var redisTimeout: DurationArgument = DurationArgument(.seconds(2))

    /// One server or a cluster: `--redis-cluster`/`TOLLGATE_REDIS_CLUSTER` when given (and no
    /// `--redis`), else `--redis`/`TOLLGATE_REDIS_URL`, else the local default.
    func topology() throws(TollgateError) -> RedisTopology {
        let environment = ProcessInfo.processInfo.environment
        let cluster = redisCluster != nil || redis == nil ? try ServeSettings.redisCluster.value(redisCluster, environment) : nil
        do throws(RedisError) {
            if let cluster {
                guard redis == nil else { throw RedisError(.invalidAddress, "give --redis or --redis-cluster, not both") }
                return .cluster(try RedisAddress.clusterSeeds(parsing: cluster))
            }
            return .single(try RedisAddress(parsing: try redisURL(environment)))
        } catch {
            throw TollgateError(.invalidArgument, error.message)
        }
    }

    private func redisURL(_ environment: [String: String]) throws(RedisError) -> String {
        do {
            return try ServeSettings.redis.value(redis, environment) ?? "redis://127.0.0.1:6379"
        } catch {
            throw RedisError(.invalidAddress, error.message)
        }
    }

    /// An engine connected to Redis with the Lua of this build installed.
    func engine() async throws(TollgateError) -> Engine {
        let engine = try unpreparedEngine()
        do {
            try await engine.prepare()
        } catch where error.code == .redisUnavailable {
            throw TollgateError(.redisUnavailable, "cannot reach Redis at \(engine.redis.configuration.address): \(error.message)")
        }
        return engine
    }

    /// An engine on the configured Redis that has not checked or installed its Lua.
    func unpreparedEngine() throws(TollgateError) -> Engine {
        let topology = try topology()
        do {
            return Engine(redis: try topology.client(RedisConfiguration(
                address: topology.primaryAddress, connectTimeout: redisTimeout.duration, commandTimeout: redisTimeout.duration,
                connectionCount: 1)))
        } catch {
            throw TollgateError(.invalidArgument, error.message)
        }
    }
}

/// A duration written as `250ms`, `30s`, `5m` or `1h`.
struct DurationArgument: ExpressibleByArgument, Sendable {
    let duration: Duration

    init(_ duration: Duration) { self.duration = duration }

    init?(argument: String) {
        let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)]
        for (suffix, millisecondsPerUnit) in units where argument.hasSuffix(suffix) {
            let number = argument.dropLast(suffix.count)
            guard !number.isEmpty, number.allSatisfy(\.isASCII), let value = Int64(number), value > 0,
                  value <= Int64.max / millisecondsPerUnit / 1_000_000 else { return nil }
            duration = .milliseconds(value * millisecondsPerUnit)
            return
        }
        return nil
    }

    /// The duration in its largest whole unit: `250ms`, `30s`, `15m`, `24h`.
    var defaultValueDescription: String {
        let milliseconds = duration.wholeMilliseconds
        for (suffix, perUnit) in [("h", Int64(3_600_000)), ("m", 60_000), ("s", 1000)] where milliseconds % perUnit == 0 && milliseconds > 0 {
            return "\(milliseconds / perUnit)\(suffix)"
        }
        return "\(milliseconds)ms"
    }
}
