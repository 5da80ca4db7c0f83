/// A Redis client for Swift concurrency over a small pool of pipelined hiredis connections.
///
/// Safe to share between any number of tasks. Each command goes to the connection with the
/// fewest commands outstanding; concurrent commands on one connection travel as one pipeline.
/// Connections are made lazily and remade after failures, so the client recovers by itself
/// when the server restarts.
public final class RedisClient: Sendable {
    /// The configuration the client was made with.
    /// On a cluster, the address is the first seed node's.
    public let configuration: RedisConfiguration
    /// Where commands go: the connections of one server, or a cluster router.
    private let backend: Backend

    private enum Backend: Sendable {
        case node([RedisConnection])
        case cluster(RedisClusterClient)
    }

    /// Makes a client; no connection is opened until the first command (see `ping()`).
    public init(configuration: RedisConfiguration) {
        self.configuration = configuration
        self.backend = .node((0..<configuration.connectionCount).map {
            RedisConnection(configuration: configuration, name: "tollgate-redis-\($0)")
        })
    }

    /// Makes a client over a Redis Cluster: every command is routed by its key's slot (see
    /// `RedisClusterClient`). The same API as for one server.
    public init(cluster: RedisClusterClient) {
        self.configuration = cluster.configuration
        self.backend = .cluster(cluster)
    }

    /// Makes a client over the Redis Cluster that `seeds` belong to, each node's pool made
    /// from `configuration` (its address is ignored).
    public convenience init(clusterSeeds seeds: [RedisAddress], configuration: RedisConfiguration) throws(RedisError) {
        self.init(cluster: try RedisClusterClient(seeds: seeds, configuration: configuration))
    }

    /// The cluster router, when this client runs on a Redis Cluster.
    public var cluster: RedisClusterClient? {
        if case .cluster(let cluster) = backend { return cluster }
        return nil
    }

    private var connections: [RedisConnection] {
        if case .node(let connections) = backend { return connections }
        return []
    }

    /// Makes a client for an address with default timeouts and pool size.
    public convenience init(address: RedisAddress) {
        self.init(configuration: RedisConfiguration(address: address))
    }

    deinit {
        for connection in connections { connection.close() }
    }

    /// Sends a command and returns its reply; an error reply throws `serverError`.
    public func send(_ command: RedisCommand) async throws(RedisError) -> RESPValue {
        let reply = try await sendReturningErrors(command)
        if case .error(let message) = reply {
            throw RedisError(.serverError, message)
        }
        return reply
    }

    /// Sends a command given as words, for example `send("SET", "k", "v")`.
    @discardableResult
    public func send(_ words: String...) async throws(RedisError) -> RESPValue {
        try await send(RedisCommand(words))
    }

    /// Sends a command and returns its reply, error replies included as `.error` values.
    public func sendReturningErrors(_ command: RedisCommand) async throws(RedisError) -> RESPValue {
        switch backend {
        case .node(let connections): return try await Self.leastBusy(connections).send(command).get()
        case .cluster(let cluster): return try await cluster.send(command)
        }
    }

    /// Sends to this client's own server, never routed (the cluster router's per-node path).
    func sendToNode(_ command: RedisCommand, asking: Bool) async -> Result<RESPValue, RedisError> {
        switch backend {
        case .node(let connections): return await Self.leastBusy(connections).send(command, asking: asking)
        case .cluster(let cluster):
            do throws(RedisError) { return .success(try await cluster.send(command)) } catch { return .failure(error) }
        }
    }

    /// Sends `command` to this server, or on a cluster to every primary; the replies in order,
    /// error replies included (a connection failure still throws).
    public func sendToEveryPrimary(_ command: RedisCommand) async throws(RedisError) -> [RESPValue] {
        switch backend {
        case .node: return [try await sendReturningErrors(command)]
        case .cluster(let cluster):
            var replies: [RESPValue] = []
            for (_, client) in try await cluster.primaryClients() { replies.append(try await client.sendReturningErrors(command)) }
            return replies
        }
    }

    /// Every key matching `pattern` (`SCAN ... MATCH`), over every primary on a cluster. A key
    /// that moves between nodes while the scan runs may be reported by both; it is listed once.
    public func scanKeys(matching pattern: String, count: Int = 1000) async throws(RedisError) -> [String] {
        let nodes: [RedisClient]
        switch backend {
        case .node: nodes = [self]
        case .cluster(let cluster): nodes = try await cluster.primaryClients().map(\.client)
        }
        var seen = Set<String>()
        var keys: [String] = []
        for node in nodes {
            var cursor = "0"
            repeat {
                let reply = try await node.send(RedisCommand(["SCAN", cursor, "MATCH", pattern, "COUNT", String(count)]))
                guard let parts = reply.array, parts.count == 2, let next = parts[0].string, let found = parts[1].array else {
                    throw RedisError(.unexpectedReply, "unexpected SCAN reply: \(reply)")
                }
                for key in found.compactMap(\.string) where seen.insert(key).inserted { keys.append(key) }
                cursor = next
            } while cursor != "0"
        }
        return keys
    }

    /// Round-trips a `PING`, connecting if needed; use it to fail early with a clear error.
    public func ping() async throws(RedisError) {
        let reply = try await send("PING")
        guard reply.string == "PONG" else {
            throw RedisError(.unexpectedReply, "PING answered \(reply)")
        }
    }

    /// Commands sent and not yet answered, over all connections (the pipeline depth).
    public var outstandingCommands: Int {
        switch backend {
        case .node(let connections): return connections.reduce(0) { $0 + $1.outstanding.load(ordering: .relaxed) }
        case .cluster(let cluster): return cluster.outstandingCommands
        }
    }

    /// Closes every connection once the commands already sent are answered; later commands
    /// fail with `clientClosed`.
    public func close() {
        switch backend {
        case .node(let connections): for connection in connections { connection.close() }
        case .cluster(let cluster): cluster.close()
        }
    }

    private static func leastBusy(_ connections: [RedisConnection]) -> RedisConnection {
        var best = connections[0]
        var bestLoad = best.outstanding.load(ordering: .relaxed)
        if bestLoad == 0 { return best }
        for connection in connections.dropFirst() {
            let load = connection.outstanding.load(ordering: .relaxed)
            if load < bestLoad {
                best = connection
                bestLoad = load
                if load == 0 { break }
            }
        }
        return best
    }
}
