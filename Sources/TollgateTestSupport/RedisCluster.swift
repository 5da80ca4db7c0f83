import Foundation
import Synchronization
import TollgateRedis

/// A local Redis Cluster of real `redis-server` processes on loopback (3 primaries with one
/// replica each by default), made with `redis-cli --cluster create`. Stopped by `stop()` or
/// when released.
public final class RedisCluster: Sendable {
    /// Every node, primaries and replicas, in the order they were given to `--cluster create`.
    public let nodes: [RedisServer]

    /// The nodes' TCP addresses, for a cluster client's seeds.
    public var seeds: [RedisAddress] { nodes.compactMap(\.tcpAddress) }
    /// `host:port,host:port,...` as `--redis-cluster` takes it.
    public var seedList: String { nodes.compactMap { $0.port.map { "127.0.0.1:\($0)" } }.joined(separator: ",") }

    /// Starts `primaries × (1 + replicasPerPrimary)` nodes, creates the cluster and waits until
    /// every node reports `cluster_state:ok` and the same slot map.
    public init(primaries: Int = 3, replicasPerPrimary: Int = 1, nodeTimeout: Duration = .milliseconds(1000)) async throws {
        var nodes: [RedisServer] = []
        for _ in 0..<(primaries * (1 + replicasPerPrimary)) {
            nodes.append(try await RedisServer(tcp: true, extraArguments: [
                "--cluster-enabled", "yes",
                "--cluster-node-timeout", String(nodeTimeout.components.seconds * 1000 + nodeTimeout.components.attoseconds / 1_000_000_000_000_000),
                "--cluster-replica-validity-factor", "0",
                "--cluster-allow-reads-when-down", "no",
            ], clusterBus: true))
        }
        self.nodes = nodes
        let addresses = nodes.compactMap { $0.port.map { "127.0.0.1:\($0)" } }
        let create = try await CommandRunner.run(
            URL(fileURLWithPath: "/usr/bin/redis-cli"),
            ["--cluster", "create"] + addresses + ["--cluster-replicas", String(replicasPerPrimary), "--cluster-yes"])
        guard create.status == 0 else {
            for node in nodes { node.stop() }
            throw RedisServerError(message: "redis-cli --cluster create failed: \(create.stdout.suffix(1500)) \(create.stderr.suffix(500))")
        }
        try await waitUntilHealthy(primaries: primaries)
    }

    /// Waits until every running node says `cluster_state:ok` and the map has `primaries`
    /// primaries covering every slot.
    public func waitUntilHealthy(primaries: Int? = nil) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if try await isHealthy(primaries: primaries) { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw RedisServerError(message: "the Redis Cluster did not become healthy within 60 s")
    }

    private func isHealthy(primaries: Int?) async throws -> Bool {
        var maps: Set<ClusterSlotMap> = []
        for node in nodes where node.isRunning {
            let client = RedisClient(configuration: RedisConfiguration(
                address: node.address, connectTimeout: .milliseconds(500), commandTimeout: .seconds(2),
                connectionCount: 1, reconnectBackoff: .zero))
            defer { client.close() }
            guard let info = try? await client.send("CLUSTER", "INFO"), let text = info.string,
                  text.contains("cluster_state:ok"),
                  let slots = try? await client.send("CLUSTER", "SLOTS"),
                  let map = try? ClusterSlotMap(clusterSlots: slots), map.coversEverySlot else { return false }
            if let primaries, map.primaries.count != primaries { return false }
            maps.insert(map)
        }
        return maps.count == 1
    }

    /// A cluster client with short timeouts suited to tests.
    public func client(connections: Int = 2, commandTimeout: Duration = .seconds(2)) -> RedisClient {
        do {
            return try RedisClient(clusterSeeds: seeds, configuration: RedisConfiguration(
                address: seeds[0], connectTimeout: .seconds(1), commandTimeout: commandTimeout,
                connectionCount: connections, reconnectBackoff: .milliseconds(10)))
        } catch {
            preconditionFailure("a test cluster's seeds are TCP addresses: \(error)")
        }
    }

    /// Stops every node.
    public func stop() {
        for node in nodes { node.stop() }
    }
}

/// The Redis the engine and HTTP tests run on: one `redis-server`, or (with
/// `TOLLGATE_TEST_REDIS=cluster`) a local Redis Cluster leased from a small shared pool and
/// emptied (`FLUSHALL` on every primary) for each lease.
public final class TestRedis: Sendable {
    /// Whether this test run uses a cluster (`TOLLGATE_TEST_REDIS=cluster`).
    public static let isCluster = ProcessInfo.processInfo.environment["TOLLGATE_TEST_REDIS"] == "cluster"

    /// The single server, when not on a cluster.
    public let single: RedisServer?
    /// The cluster, when on one.
    public let cluster: RedisCluster?

    /// A single server started elsewhere.
    public convenience init(_ single: RedisServer) { self.init(single: single, cluster: nil) }

    private init(single: RedisServer?, cluster: RedisCluster?) {
        self.single = single
        self.cluster = cluster
    }

    /// A fresh, empty Redis of the mode this run uses. `extraArguments` go to a single server
    /// (fault tests, which run only in single mode).
    public static func start(persistent: Bool = false, extraArguments: [String] = []) async throws -> TestRedis {
        guard isCluster else {
            return TestRedis(single: try await RedisServer(persistent: persistent, extraArguments: extraArguments), cluster: nil)
        }
        let cluster = try await ClusterPool.shared.lease()
        let client = cluster.client(connections: 1)
        defer { client.close() }
        _ = try await client.send("FLUSHALL")
        return TestRedis(single: nil, cluster: cluster)
    }

    deinit {
        if let cluster { ClusterPool.shared.giveBack(cluster) }
    }

    /// A client (single or cluster) with short timeouts suited to tests.
    public func client(connections: Int = 2, commandTimeout: Duration = .seconds(2)) -> RedisClient {
        if let cluster { return cluster.client(connections: connections, commandTimeout: commandTimeout) }
        return single!.client(connections: connections, commandTimeout: commandTimeout)
    }

    /// The environment that points the `tollgate` CLI at this Redis.
    public var environment: [String: String] {
        if let cluster { return ["TOLLGATE_REDIS_CLUSTER": cluster.seedList] }
        return ["TOLLGATE_REDIS_URL": single!.url]
    }

    /// The `tollgate` flags that point at this Redis: `--redis URL` or `--redis-cluster LIST`.
    public var serveArguments: [String] {
        if let cluster { return ["--redis-cluster", cluster.seedList] }
        return ["--redis", single!.url]
    }
}

/// Clusters shared by the tests of one process, one lease at a time each; at most
/// `TOLLGATE_TEST_CLUSTERS` (default 2) exist, and a lease waits for a free one.
final class ClusterPool: Sendable {
    static let shared = ClusterPool()

    private struct State {
        var free: [RedisCluster] = []
        var all: [RedisCluster] = []
        var starting = 0
        var waiters: [CheckedContinuation<RedisCluster?, Never>] = []
    }
    private let state = Mutex(State())
    private let limit = max(1, Int(ProcessInfo.processInfo.environment["TOLLGATE_TEST_CLUSTERS"] ?? "") ?? 2)

    private init() {
        atexit { ClusterPool.shared.stopAll() }
    }

    func lease() async throws -> RedisCluster {
        enum Next { case take(RedisCluster), start, wait }
        let next = state.withLock { state -> Next in
            if let cluster = state.free.popLast() { return .take(cluster) }
            if state.all.count + state.starting < limit {
                state.starting += 1
                return .start
            }
            return .wait
        }
        switch next {
        case .take(let cluster): return cluster
        case .start:
            do {
                let cluster = try await RedisCluster()
                state.withLock {
                    $0.starting -= 1
                    $0.all.append(cluster)
                }
                return cluster
            } catch {
                state.withLock { $0.starting -= 1 }
                throw error
            }
        case .wait:
            let given = await withCheckedContinuation { continuation in
                let immediate = state.withLock { state -> RedisCluster? in
                    if let cluster = state.free.popLast() { return cluster }
                    state.waiters.append(continuation)
                    return nil
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
            guard let given else { throw RedisServerError(message: "the test cluster pool was shut down") }
            return given
        }
    }

    func giveBack(_ cluster: RedisCluster) {
        let waiter = state.withLock { state -> CheckedContinuation<RedisCluster?, Never>? in
            if !state.waiters.isEmpty { return state.waiters.removeFirst() }
            state.free.append(cluster)
            return nil
        }
        waiter?.resume(returning: cluster)
    }

    private func stopAll() {
        let clusters = state.withLock { $0.all }
        for cluster in clusters { cluster.stop() }
    }
}
