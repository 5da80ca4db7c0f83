import Foundation
import Logging
import ServiceLifecycle
import TollgateRedis
#if canImport(Glibc)
import Glibc
#endif

/// A private `redis-server` child for `tollgate serve` with no Redis address: AOF on, data and
/// a unix socket (no TCP port) under the data folder, which a lock keeps to one server.
public final class EmbeddedRedis: Sendable {
    /// The data folder.
    public let directory: URL
    /// The unix socket Redis listens on.
    public let socketPath: String
    private let pid: pid_t
    private let lockDescriptor: Int32

    /// The address to give the Redis client.
    public var address: RedisAddress { RedisAddress(endpoint: .unixSocket(path: socketPath)) }

    private init(directory: URL, socketPath: String, pid: pid_t, lockDescriptor: Int32) {
        self.directory = directory
        self.socketPath = socketPath
        self.pid = pid
        self.lockDescriptor = lockDescriptor
    }

    /// Takes the data folder's lock, starts `redis-server` (fsync as `durability` says) and waits
    /// until it answers.
    public static func start(in directory: URL, durability: Durability = .normal, logger: Logger) async throws -> EmbeddedRedis {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let lockPath = directory.appendingPathComponent("tollgate.lock").path
        let descriptor = open(lockPath, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw ServeError("cannot open \(lockPath): \(String(cString: strerror(errno)))") }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            throw ServeError("the data folder \(directory.path) is in use by another 'tollgate serve'; stop it or pass --data-dir")
        }
        let socketPath = directory.appendingPathComponent("redis.sock").path
        // A redis-server left over from a server that was killed still holds the socket: the
        // lock proves no server owns it now, so ask it to save and stop.
        if FileManager.default.fileExists(atPath: socketPath) {
            let stray = RedisClient(configuration: RedisConfiguration(address: RedisAddress(endpoint: .unixSocket(path: socketPath)),
                                                                      connectTimeout: .milliseconds(300), connectionCount: 1))
            if (try? await stray.ping()) != nil {
                logger.warning("stopping a redis-server left over from an earlier run", metadata: ["socket": "\(socketPath)"])
                _ = try? await stray.send("SHUTDOWN")
                try await Task.sleep(for: .milliseconds(200))
            }
            stray.close()
            try? FileManager.default.removeItem(atPath: socketPath)
        }
        let arguments = [
            "redis-server", "--port", "0", "--unixsocket", socketPath, "--unixsocketperm", "700",
            "--dir", directory.path, "--appendonly", "yes", "--appendfsync", durability.appendfsync, "--save", "",
            "--daemonize", "no", "--logfile", directory.appendingPathComponent("redis.log").path,
            // An account's hash holds dozens of fields (limits, their state, keys, carries):
            // as a real hash table rather than a listpack every field read is O(1). Measured:
            // about 10 % fewer instructions per authorize (docs/PERFORMANCE.md).
            "--hash-max-listpack-entries", "16",
        ]
        let pid = try spawn(arguments)
        let redis = EmbeddedRedis(directory: directory, socketPath: socketPath, pid: pid, lockDescriptor: descriptor)
        let client = RedisClient(configuration: RedisConfiguration(address: redis.address, connectTimeout: .milliseconds(300),
                                                                   connectionCount: 1, reconnectBackoff: .zero))
        defer { client.close() }
        let deadline = ContinuousClock.now + .seconds(15)
        while ContinuousClock.now < deadline {
            // LOADING (replaying the AOF) is not ready yet.
            if case .simpleString("PONG")? = try? await client.sendReturningErrors(RedisCommand("PING")) { return redis }
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                throw ServeError("redis-server exited at start; see \(directory.appendingPathComponent("redis.log").path)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        redis.stop()
        throw ServeError("redis-server did not answer within 15 s; see \(directory.appendingPathComponent("redis.log").path)")
    }

    /// Stops Redis (it finishes writing its AOF) and releases the data folder.
    public func stop() {
        kill(pid, SIGTERM)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        flock(lockDescriptor, LOCK_UN)
        close(lockDescriptor)
    }

    /// Starts redis-server in its own process group (a terminal's ^C reaches Tollgate, which
    /// then stops Redis in order), with signals as `withChildSpawnAttributes` sets them.
    private static func spawn(_ arguments: [String]) throws -> pid_t {
        guard let executable = ["/usr/bin/redis-server", "/usr/local/bin/redis-server", "/usr/sbin/redis-server"]
            .first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw ServeError("redis-server is not installed (Debian: apt-get install redis-server), or pass --redis URL")
        }
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let result = withChildSpawnAttributes(newProcessGroup: true) { attributes in
            posix_spawn(&pid, executable, nil, attributes, argv, environ)
        }
        guard result == 0 else { throw ServeError("cannot start redis-server: \(String(cString: strerror(result)))") }
        return pid
    }
}

/// Runs until shutdown, then closes the Redis client and stops the embedded Redis: the last
/// service of the group, so it stops after the HTTP server has finished its requests.
public struct RedisLifecycleService: Service {
    let client: RedisClient
    let embedded: EmbeddedRedis?
    let logger: Logger

    public init(client: RedisClient, embedded: EmbeddedRedis?, logger: Logger) {
        self.client = client
        self.embedded = embedded
        self.logger = logger
    }

    public func run() async throws {
        try? await gracefulShutdown()
        client.close()
        if let embedded {
            logger.info("stopping the embedded redis-server")
            embedded.stop()
        }
    }
}

/// Closes the gateway's Redis client at shutdown, after the HTTP server has finished.
public struct DecisionClientService: Service {
    let client: RedisClient

    public init(client: RedisClient) { self.client = client }

    public func run() async throws {
        try? await gracefulShutdown()
        client.close()
    }
}

/// A reason `tollgate serve` cannot start, for people.
public struct ServeError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
