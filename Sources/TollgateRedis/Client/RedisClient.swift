/// A Redis client for Swift concurrency over a small pool of pipelined hiredis connections.
///
/// Safe to share between any number of tasks. Each command goes to the connection with the
/// fewest commands outstanding; concurrent commands on one connection travel as one pipeline.
/// Connections are made lazily and remade after failures, so the client recovers by itself
/// when the server restarts.
public final class RedisClient: Sendable {
    /// The configuration the client was made with.
    public let configuration: RedisConfiguration
    private let connections: [RedisConnection]

    /// Makes a client; no connection is opened until the first command (see `ping()`).
    public init(configuration: RedisConfiguration) {
        self.configuration = configuration
        self.connections = (0..<configuration.connectionCount).map {
            RedisConnection(configuration: configuration, name: "tollgate-redis-\($0)")
        }
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
        try await leastBusyConnection().send(command).get()
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
        connections.reduce(0) { $0 + $1.outstanding.load(ordering: .relaxed) }
    }

    /// Closes every connection once the commands already sent are answered; later commands
    /// fail with `clientClosed`.
    public func close() {
        for connection in connections { connection.close() }
    }

    private func leastBusyConnection() -> RedisConnection {
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
