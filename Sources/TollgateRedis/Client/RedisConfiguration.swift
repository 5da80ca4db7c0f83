/// How a `RedisClient` connects and how long it waits.
public struct RedisConfiguration: Sendable {
    /// The server.
    public var address: RedisAddress
    /// The longest a connect (including `AUTH` and `SELECT`) may take.
    public var connectTimeout: Duration
    /// The longest any single write or reply may take; past it the command fails with
    /// `timeout` and its connection is replaced, so a late reply can never reach another caller.
    public var commandTimeout: Duration
    /// How many connections share the load. Concurrent commands on one connection are
    /// pipelined, so a few connections carry many callers.
    public var connectionCount: Int
    /// After a failed connect, commands fail at once with that error for this long, rather
    /// than each waiting for a connect of its own.
    public var reconnectBackoff: Duration

    public init(
        address: RedisAddress,
        connectTimeout: Duration = .seconds(2),
        commandTimeout: Duration = .seconds(2),
        connectionCount: Int = 4,
        reconnectBackoff: Duration = .milliseconds(50)
    ) {
        precondition(connectionCount > 0, "a client needs at least one connection")
        self.address = address
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.connectionCount = connectionCount
        self.reconnectBackoff = reconnectBackoff
    }
}
