import Synchronization

/// Routes commands over a Redis Cluster: each by its first key's slot to that slot's primary,
/// through a pipelined `RedisClient` pool per primary.
///
/// The slot map comes from `CLUSTER SLOTS` on any reachable node (the seeds first time) and is
/// refreshed on `MOVED`, on `CLUSTERDOWN`, on a `READONLY` answer (a primary that became a
/// replica) and whenever a node cannot be reached. `ASK` is followed once, with `ASKING` sent
/// on the same connection immediately before the command. Redirections and retries are bounded
/// (`maximumAttempts`); a command whose outcome is unknown (the connection broke or timed out
/// after it was sent) is never resent, so nothing is ever applied twice by the router.
///
/// Commands without a key go to one primary (`PING`, `PUBLISH`: a cluster broadcasts
/// `PUBLISH` to every node), or to every primary (`FUNCTION`, `SCRIPT`, `FLUSHALL`,
/// `FLUSHDB`). `SCAN` must visit every primary: use `RedisClient.scanKeys(matching:)`.
public final class RedisClusterClient: Sendable {
    /// The configuration every node's pool is made from (its address is the first seed).
    public let configuration: RedisConfiguration
    /// The nodes asked for the slot map when no known node answers.
    public let seeds: [ClusterSlotMap.Node]
    /// How many times one command is sent at most, across redirections and retries.
    public let maximumAttempts = 10

    private struct State {
        var map: ClusterSlotMap?
        var clients: [ClusterSlotMap.Node: RedisClient] = [:]
        var refresh: Task<Result<ClusterSlotMap, RedisError>, Never>?
        var closed = false
    }
    private let state = Mutex(State())

    /// A client for the cluster that `seeds` belong to; nothing connects before the first command.
    /// `configuration` gives timeouts, pool size per node and credentials (its address is ignored).
    public init(seeds: [RedisAddress], configuration: RedisConfiguration) throws(RedisError) {
        var nodes: [ClusterSlotMap.Node] = []
        for seed in seeds {
            guard case .tcp(let host, let port) = seed.endpoint else {
                throw RedisError(.invalidAddress, "a cluster node is reached over TCP; \(seed) is not host:port")
            }
            nodes.append(ClusterSlotMap.Node(host: host, port: port))
        }
        guard let first = seeds.first else { throw RedisError(.invalidAddress, "a cluster needs at least one seed node") }
        var configuration = configuration
        configuration.address = first
        self.configuration = configuration
        self.seeds = nodes
    }

    deinit {
        state.withLock { state in
            for client in state.clients.values { client.close() }
        }
    }

    /// Sends a command where it belongs; error replies other than redirections are returned.
    public func send(_ command: RedisCommand) async throws(RedisError) -> RESPValue {
        let routing = CommandRouting(command)
        if case .everyPrimary = routing { return try await broadcast(command) }
        var askTarget: ClusterSlotMap.Node?
        var lastReply: RESPValue?
        var lastError: RedisError?
        for attempt in 0..<maximumAttempts {
            let node: ClusterSlotMap.Node
            let asking = askTarget != nil
            if let target = askTarget {
                node = target
                askTarget = nil
            } else {
                do throws(RedisError) {
                    node = try await self.node(for: routing)
                } catch {
                    lastError = error
                    await pause(attempt)
                    _ = try? await refreshedMap()
                    continue
                }
            }
            switch await client(for: node).sendToNode(command, asking: asking) {
            case .failure(let error):
                _ = refreshInBackground()
                // Refused, or the connect timed out: the command never left; another primary may
                // own the slot soon (a failover). Timed out or broken after sending: its outcome is unknown, so it
                // is not sent again here.
                let neverSent = error.code == .connectionRefused
                    || (error.code == .timeout && error.message.hasPrefix("connect timed out"))
                guard neverSent else { throw error }
                lastError = error
                await pause(attempt)
                _ = try? await refreshedMap()
            case .success(.error(let message)):
                if let redirect = ClusterRedirect(message) {
                    let target = redirect.node.host.isEmpty
                        ? ClusterSlotMap.Node(host: node.host, port: redirect.node.port) : redirect.node
                    switch redirect.kind {
                    case .moved:
                        state.withLock { $0.map?.assign(redirect.slot, to: target) }
                        _ = refreshInBackground()
                    case .ask:
                        askTarget = target
                    }
                    continue
                }
                lastReply = .error(message)
                if message.hasPrefix("TRYAGAIN") || message.hasPrefix("LOADING") {
                    await pause(attempt)
                } else if message.hasPrefix("CLUSTERDOWN") || message.hasPrefix("READONLY") || message.hasPrefix("MASTERDOWN") {
                    // Rejected before running: safe to send again once the map is current.
                    await pause(attempt)
                    _ = try? await refreshedMap()
                } else {
                    return .error(message)
                }
            case .success(let reply):
                return reply
            }
        }
        if let lastReply { return lastReply }
        throw lastError ?? RedisError(.connectionRefused, "no cluster node answered")
    }

    /// The pools of every primary, per the current slot map (read first if need be).
    public func primaryClients() async throws(RedisError) -> [(node: ClusterSlotMap.Node, client: RedisClient)] {
        let map = try await currentMap()
        return map.primaries.map { ($0, client(for: $0)) }
    }

    /// The slot map in use, read from the cluster when there is none yet.
    public func currentMap() async throws(RedisError) -> ClusterSlotMap {
        if let map = state.withLock({ $0.map }) { return map }
        return try await refreshedMap()
    }

    /// Reads the slot map again now (concurrent callers share one read).
    @discardableResult
    public func refreshedMap() async throws(RedisError) -> ClusterSlotMap {
        try await refreshInBackground().value.get()
    }

    /// Commands sent and not yet answered, over every node.
    public var outstandingCommands: Int {
        state.withLock { $0.clients.values.reduce(0) { $0 + $1.outstandingCommands } }
    }

    /// Closes every node's connections; later commands fail with `clientClosed`.
    public func close() {
        let clients = state.withLock { state -> [RedisClient] in
            state.closed = true
            return Array(state.clients.values)
        }
        for client in clients { client.close() }
    }

    // MARK: Internals

    private func broadcast(_ command: RedisCommand) async throws(RedisError) -> RESPValue {
        var first: RESPValue?
        for (_, client) in try await primaryClients() {
            let reply = try await client.sendReturningErrors(command)
            if case .error = reply { return reply }
            if first == nil { first = reply }
        }
        return first ?? .null
    }

    private func node(for routing: CommandRouting) async throws(RedisError) -> ClusterSlotMap.Node {
        let map = try await currentMap()
        switch routing {
        case .slot(let slot):
            guard let node = map.primary(for: slot) else {
                throw RedisError(.connectionRefused, "no cluster node serves slot \(slot)")
            }
            return node
        case .anyPrimary, .everyPrimary:
            guard let node = map.primaries.randomElement() else {
                throw RedisError(.connectionRefused, "the cluster has no primary serving slots")
            }
            return node
        }
    }

    func client(for node: ClusterSlotMap.Node) -> RedisClient {
        state.withLock { state in
            if let client = state.clients[node] { return client }
            var configuration = self.configuration
            configuration.address = RedisAddress(
                endpoint: .tcp(host: node.host, port: node.port), user: configuration.address.user,
                password: configuration.address.password)
            let client = RedisClient(configuration: configuration)
            if state.closed { client.close() }
            state.clients[node] = client
            return client
        }
    }

    private func refreshInBackground() -> Task<Result<ClusterSlotMap, RedisError>, Never> {
        state.withLock { current in
            if let running = current.refresh { return running }
            let task = Task { [self] in
                let result = await fetchMap()
                state.withLock { after in
                    if case .success(let map) = result { after.map = map }
                    after.refresh = nil
                }
                return result
            }
            current.refresh = task
            return task
        }
    }

    /// Asks the known nodes (primaries, then replicas, then seeds) for `CLUSTER SLOTS`; the
    /// first full map wins, else the first partial one.
    private func fetchMap() async -> Result<ClusterSlotMap, RedisError> {
        let known = state.withLock { $0.map }
        var candidates: [ClusterSlotMap.Node] = []
        if let known {
            candidates += known.primaries
            candidates += known.primaries.flatMap { known.replicas[$0] ?? [] }
        }
        candidates += seeds
        var seen = Set<ClusterSlotMap.Node>()
        var partial: ClusterSlotMap?
        var lastError = RedisError(.connectionRefused, "no cluster node answered CLUSTER SLOTS")
        for node in candidates where seen.insert(node).inserted {
            switch await client(for: node).sendToNode(RedisCommand(["CLUSTER", "SLOTS"]), asking: false) {
            case .success(.error(let message)):
                lastError = RedisError(.serverError, "CLUSTER SLOTS on \(node): \(message)")
            case .success(let reply):
                do throws(RedisError) {
                    let map = try ClusterSlotMap(clusterSlots: reply, askedHost: node.host)
                    if map.coversEverySlot { return .success(map) }
                    if partial == nil { partial = map }
                } catch {
                    lastError = error
                }
            case .failure(let error):
                lastError = error
            }
        }
        if let partial { return .success(partial) }
        return .failure(lastError)
    }

    private func pause(_ attempt: Int) async {
        let milliseconds = min(25 << min(attempt, 5), 500)
        try? await Task.sleep(for: .milliseconds(milliseconds))
    }
}
