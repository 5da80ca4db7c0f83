import Foundation
import Synchronization
import TollgateRedis

/// A real `redis-server` child process for tests and benchmarks, on a unix socket (and a TCP
/// port when asked) in a private temporary folder. Stopped by `stop()` or when released.
public final class RedisServer: Sendable {
    /// Where the server listens on its unix socket.
    public let socketPath: String
    /// The TCP port, when the server was started with one.
    public var port: Int? { ports.withLock { $0.client } }
    /// The server's private folder (data, socket, log).
    public let directory: URL
    private let persistent: Bool
    private let extraArguments: [String]
    /// The TCP port and the cluster bus port; drawn again when the first start fails, for
    /// another process may bind a free port between the draw and the server's own bind.
    private let ports: Mutex<(client: Int?, clusterBus: Int?)>
    private let process: Mutex<ChildProcess?>

    /// The unix-socket address of the server.
    public var address: RedisAddress { RedisAddress(endpoint: .unixSocket(path: socketPath)) }
    /// The TCP address, when the server has a port.
    public var tcpAddress: RedisAddress? { port.map { RedisAddress(endpoint: .tcp(host: "127.0.0.1", port: $0)) } }
    /// The unix-socket address as a URL string (`unix:///...`).
    public var url: String { "unix://\(socketPath)" }

    /// Starts a server and waits until it answers `PING`.
    /// - Parameters:
    ///   - tcp: also listen on a free TCP port on 127.0.0.1.
    ///   - persistent: keep data across `restart()` (AOF on), as the embedded server does.
    ///   - extraArguments: more `redis-server` options, appended after the defaults (for
    ///     example `["--requirepass", "secret"]`); they apply to every `start()`.
    ///   - clusterBus: a cluster node: also give it a free cluster bus port (`--cluster-port`).
    public init(tcp: Bool = false, persistent: Bool = false, extraArguments: [String] = [], clusterBus: Bool = false) async throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("tollgate-redis-\(UUID().uuidString.prefix(8))", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        self.directory = directory
        self.socketPath = directory.appendingPathComponent("redis.sock").path
        let drawPorts = { (client: tcp ? try Self.freePort() : nil, clusterBus: clusterBus ? try Self.freePort() : nil) }
        self.ports = Mutex(try drawPorts())
        self.persistent = persistent
        self.extraArguments = extraArguments
        self.process = Mutex(nil)
        // A port free when drawn can be bound by another process before the server binds it
        // (CI once lost a cluster node so): the first start draws new ports and tries again.
        for _ in 0..<((tcp || clusterBus) ? 4 : 0) {
            do {
                try await start()
                return
            } catch is RedisServerError {
                let fresh = try drawPorts()
                ports.withLock { $0 = fresh }
            }
        }
        try await start()
    }

    deinit {
        process.withLock { running in _ = running?.stopWaiting() }
        try? FileManager.default.removeItem(at: directory)
    }

    /// Stops the server (SIGTERM, with SIGCONT for a server a fault test left paused) and
    /// waits for it to exit; SIGKILL after 5 s.
    public func stop() {
        let running = process.withLock { current -> ChildProcess? in
            defer { current = nil }
            return current
        }
        running?.stopWaiting()
    }

    /// Whether the server process runs.
    public var isRunning: Bool { process.withLock { $0?.isRunning ?? false } }

    /// The server's process id, while it runs.
    public var processIdentifier: Int32? { process.withLock { $0.map(\.pid) } }

    /// Kills the server at once (SIGKILL, no shutdown work), as a crash would, and waits for it.
    public func kill() {
        let running = process.withLock { current -> ChildProcess? in
            defer { current = nil }
            return current
        }
        running?.stopWaiting(signal: SIGKILL)
    }

    /// Sends `signal` (SIGSTOP, SIGCONT, SIGKILL...) to the running server, for fault tests.
    /// After SIGKILL it waits for the process to be gone; `start()` brings it back.
    public func signal(_ signal: Int32) {
        if signal == SIGKILL { return kill() }
        process.withLock { $0 }?.signal(signal)
    }

    /// Starts the server again on the same socket and port (after `stop()`).
    public func start() async throws {
        let (port, clusterBus) = ports.withLock { $0 }
        let arguments = [
            "--port", String(port ?? 0),
            "--bind", "127.0.0.1",
            "--unixsocket", socketPath,
            "--unixsocketperm", "700",
            "--dir", directory.path,
            "--save", "",
            "--appendonly", persistent ? "yes" : "no",
            "--logfile", directory.appendingPathComponent("redis.log").path,
            "--daemonize", "no",
        ] + (clusterBus.map { ["--cluster-port", String($0)] } ?? []) + extraArguments
        let child: ChildProcess
        do {
            child = try ChildProcess.spawn(try Self.redisServerExecutable().path, arguments, stdout: "/dev/null", stderr: "/dev/null")
        } catch let error as ChildProcessError {
            throw RedisServerError(message: error.message)
        }
        process.withLock { $0 = child }
        let client = RedisClient(configuration: RedisConfiguration(
            address: address, connectTimeout: .milliseconds(200), commandTimeout: .seconds(1),
            connectionCount: 1, reconnectBackoff: .zero))
        defer { client.close() }
        // Only a hang is caught here: a loaded machine starting dozens of servers at once (the
        // whole suite in parallel) has taken 10 s to start one.
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            // Up means PONG, or NOAUTH when `extraArguments` set a password (LOADING is not up).
            switch try? await client.sendReturningErrors(RedisCommand("PING")) {
            case .simpleString("PONG"): return
            case .error(let message) where message.hasPrefix("NOAUTH"): return
            default: break
            }
            guard child.isRunning else { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        let log = (try? String(contentsOf: directory.appendingPathComponent("redis.log"), encoding: .utf8)) ?? ""
        stop()
        throw RedisServerError(message: "redis-server did not start; its log:\n\(log.suffix(2000))")
    }

    /// Restarts the server: stop, then start on the same socket and port.
    public func restart() async throws {
        stop()
        try await start()
    }

    /// A client for this server with short timeouts suited to tests.
    public func client(connections: Int = 2, commandTimeout: Duration = .seconds(2)) -> RedisClient {
        RedisClient(configuration: RedisConfiguration(
            address: address, connectTimeout: .seconds(1), commandTimeout: commandTimeout,
            connectionCount: connections, reconnectBackoff: .milliseconds(10)))
    }

    private static func redisServerExecutable() throws -> URL {
        for directory in ["/usr/bin", "/usr/local/bin", "/usr/sbin"] {
            let candidate = URL(fileURLWithPath: directory).appendingPathComponent("redis-server")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        throw RedisServerError(message: "redis-server is not installed (Debian: apt-get install redis-server)")
    }

    /// A free TCP port on 127.0.0.1, never handed out before in this process.
    ///
    /// Drawn below the kernel's ephemeral range (32768 and up on Linux), for a port the kernel
    /// picks (`bind` to port 0) is one the next outgoing connection of any concurrent test
    /// may take as its local port before the server binds it: a cluster node once failed to
    /// start so.
    public static func freePort() throws -> Int {
        for _ in 0..<200 {
            let candidate = Int.random(in: 10_000..<32_768)
            guard handedOutPorts.withLock({ $0.insert(candidate).inserted }) else { continue }
            if canBind(candidate) { return candidate }
        }
        throw RedisServerError(message: "no free TCP port found on 127.0.0.1 in 10000-32767")
    }

    private static let handedOutPorts = Mutex<Set<Int>>([])

    private static func canBind(_ port: Int) -> Bool {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }
}

/// Why a test `redis-server` could not be started.
public struct RedisServerError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
