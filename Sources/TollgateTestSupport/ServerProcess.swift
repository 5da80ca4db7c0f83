import Foundation
import TollgateRedis
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A child process of a test, with its output captured: spawned with an empty signal mask
/// and default signal handling (so SIGTERM reaches it), stdout and stderr read on threads of
/// their own, its exit awaited on another. Async callers poll what was seen, so nothing here
/// blocks the cooperative pool. Killed (SIGKILL) if released while still running.
public final class TestProcess: Sendable {
    /// How the child ended.
    public enum Termination: Sendable, Hashable, CustomStringConvertible {
        case exited(Int32)
        case signaled(Int32)

        public var description: String {
            switch self {
            case .exited(let code): return "exit status \(code)"
            case .signaled(let signal): return "killed by signal \(signal)"
            }
        }
    }

    /// The child's process id.
    public let pid: pid_t
    private let shared = Shared()

    private struct State {
        var stdout: [UInt8] = []
        var stderr: [UInt8] = []
        var termination: Termination?
    }

    private final class Shared: Sendable {
        let state = Mutex(State())
    }

    /// Starts `executable` with `arguments`; the environment is this process's without
    /// `TOLLGATE_*` variables, plus `environment`. `stdin` is written to the child's standard
    /// input, which then ends (without it, the input is /dev/null).
    public init(_ executable: URL, _ arguments: [String], environment: [String: String] = [:], stdin: [UInt8]? = nil) throws {
        guard FileManager.default.isExecutableFile(atPath: executable.path) else {
            throw ServerProcessError("\(executable.path) is not built (swift build --build-tests)")
        }
        let child: Spawn.Spawned
        do {
            child = try Spawn.spawn(executable.path, arguments, environment: environment, stdin: stdin,
                                    stdout: .captured, stderr: .captured)
        } catch {
            throw ServerProcessError(error.message)
        }
        let shared = shared
        Spawn.readLoop(child.stdout!) { bytes in shared.state.withLock { $0.stdout += bytes } }
        Spawn.readLoop(child.stderr!) { bytes in shared.state.withLock { $0.stderr += bytes } }
        Spawn.waitLoop(child.pid) { termination in shared.state.withLock { $0.termination = termination } }
        self.pid = child.pid
    }

    deinit {
        if shared.state.withLock({ $0.termination }) == nil { kill(pid, SIGKILL) }
    }

    /// What the child wrote to stdout so far.
    public var stdout: String { shared.state.withLock { String(decoding: $0.stdout, as: UTF8.self) } }
    /// What the child wrote to stderr so far.
    public var stderr: String { shared.state.withLock { String(decoding: $0.stderr, as: UTF8.self) } }
    /// How the child ended, if it has.
    public var termination: Termination? { shared.state.withLock { $0.termination } }
    /// Whether the child is still running.
    public var isRunning: Bool { termination == nil }

    /// The last few KB of both outputs, for failure messages.
    public var outputSummary: String {
        "stdout:\n\(stdout.suffix(4000))\nstderr:\n\(stderr.suffix(4000))"
    }

    /// Sends a signal to the child, if it is still running.
    public func signal(_ signal: Int32) {
        if termination == nil { kill(pid, signal) }
    }

    /// Waits until the child has ended; after `timeout` it is killed (SIGKILL) and an error thrown.
    @discardableResult
    public func waitForExit(timeout: Duration = .seconds(30)) async throws -> Termination {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let ended = termination {
                // Let the readers take what was written just before the exit.
                try await Task.sleep(for: .milliseconds(20))
                return ended
            }
            guard ContinuousClock.now < deadline else {
                kill(pid, SIGKILL)
                throw ServerProcessError("process \(pid) did not exit within \(timeout); killed\n\(outputSummary)")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Waits until stdout or stderr contains `text`; throws if the child ends first or after `timeout`.
    public func waitForOutput(containing text: String, timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        func seen() -> Bool { stdout.contains(text) || stderr.contains(text) }
        while !seen() {
            if termination != nil {
                try await Task.sleep(for: .milliseconds(50))
                if seen() { return }
                throw ServerProcessError("process \(pid) ended (\(termination!)) without printing '\(text)'\n\(outputSummary)")
            }
            guard ContinuousClock.now < deadline else {
                throw ServerProcessError("no output containing '\(text)' within \(timeout)\n\(outputSummary)")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }
}

/// A running `tollgate serve --port 0` for end-to-end tests: started against a test
/// `RedisServer` (`--redis unix://...`) or the embedded default, its port read from the
/// `tollgate listening on http://HOST:PORT (...)` line, stopped with SIGTERM.
public final class ServerProcess: Sendable {
    /// The child.
    public let process: TestProcess
    /// The port it listens on.
    public let port: Int
    /// `http://127.0.0.1:PORT`.
    public let baseURL: String
    /// The data folder passed with `--data-dir`.
    public let dataDirectory: URL
    /// The admin and service tokens: as given, or as the server printed them when it generated them.
    public let adminToken: String?
    public let serviceToken: String?
    private let ownsDataDirectory: Bool

    /// An HTTP client for this server.
    public var http: TestHTTPClient { TestHTTPClient(port: port) }
    /// The child's process id.
    public var pid: pid_t { process.pid }

    /// Starts `tollgate serve --host 127.0.0.1 --port 0 --data-dir DIR`, and returns once it
    /// has printed where it listens.
    /// - Parameters:
    ///   - redis: a test Redis to use (`--redis unix://...`); nil starts the embedded default.
    ///   - dataDirectory: `--data-dir`; nil makes a fresh temporary folder, removed when this
    ///     object is released.
    ///   - adminToken, serviceToken: passed as flags when given; otherwise the server
    ///     generates them and they are read from what it prints.
    ///   - arguments: more flags for `serve`.
    ///   - environment: more environment variables (inherited `TOLLGATE_*` ones are dropped).
    public static func start(
        redis: RedisServer? = nil,
        redisArguments: [String] = [],
        dataDirectory: URL? = nil,
        adminToken: String? = nil,
        serviceToken: String? = nil,
        arguments: [String] = [],
        environment: [String: String] = [:],
        executable: URL = CommandRunner.product("tollgate"),
        timeout: Duration = .seconds(60)
    ) async throws -> ServerProcess {
        let directory = dataDirectory ?? Self.temporaryDirectory()
        var flags = ["serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", directory.path]
        if let redis { flags += ["--redis", redis.url] }
        flags += redisArguments
        if let adminToken { flags += ["--admin-token", adminToken] }
        if let serviceToken { flags += ["--service-token", serviceToken] }
        flags += arguments
        let process = try TestProcess(executable, flags, environment: environment)

        // The announcement, written at once: "tollgate listening on http://HOST:PORT (redis: ...)",
        // then any tokens this start generated, "admin token: X  (kept in ...)".
        let prefix = "tollgate listening on http://"
        let deadline = ContinuousClock.now + timeout
        while true {
            let lines = process.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            if let index = lines.firstIndex(where: { $0.hasPrefix(prefix) }) {
                let address = lines[index].dropFirst(prefix.count).prefix { $0 != " " }
                guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else {
                    process.signal(SIGKILL)
                    throw ServerProcessError("cannot read the port from '\(lines[index])'")
                }
                func printed(_ name: String) -> String? {
                    lines.first { $0.hasPrefix("\(name) token: ") }.map { String($0.dropFirst("\(name) token: ".count).prefix { $0 != " " }) }
                }
                // A token read back from the data folder is not printed again: read its file.
                func kept(_ name: String) -> String? {
                    (try? String(contentsOf: directory.appendingPathComponent("\(name).token"), encoding: .utf8))?
                        .trimmingCharacters(in: .whitespacesAndNewlines)
                }
                return ServerProcess(
                    process: process, port: port, dataDirectory: directory, ownsDataDirectory: dataDirectory == nil,
                    adminToken: adminToken ?? printed("admin") ?? kept("admin"), serviceToken: serviceToken ?? printed("service") ?? kept("service"))
            }
            if let ended = process.termination {
                try await Task.sleep(for: .milliseconds(50))
                throw ServerProcessError("tollgate serve ended (\(ended)) before listening\n\(process.outputSummary)")
            }
            guard ContinuousClock.now < deadline else {
                process.signal(SIGKILL)
                throw ServerProcessError("tollgate serve did not say where it listens within \(timeout)\n\(process.outputSummary)")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// A fresh folder name under the temporary directory (not created).
    public static func temporaryDirectory() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-serve-\(UUID().uuidString.prefix(8))", isDirectory: true)
    }

    private init(process: TestProcess, port: Int, dataDirectory: URL, ownsDataDirectory: Bool, adminToken: String?, serviceToken: String?) {
        self.process = process
        self.port = port
        self.baseURL = "http://127.0.0.1:\(port)"
        self.dataDirectory = dataDirectory
        self.ownsDataDirectory = ownsDataDirectory
        self.adminToken = adminToken
        self.serviceToken = serviceToken
    }

    deinit {
        process.signal(SIGKILL)
        if ownsDataDirectory { try? FileManager.default.removeItem(at: dataDirectory) }
    }

    /// What the server printed so far, stdout then stderr.
    public var output: String { process.stdout + process.stderr }

    /// Sends `signal` to the server (SIGKILL for crash tests).
    public func signal(_ signal: Int32) { process.signal(signal) }

    /// Waits for the server to exit (after `signal`).
    @discardableResult
    public func waitForExit(timeout: Duration = .seconds(30)) async throws -> TestProcess.Termination {
        try await process.waitForExit(timeout: timeout)
    }

    /// SIGTERM, then waits for the server to exit (graceful shutdown); SIGKILL after `timeout`.
    @discardableResult
    public func stop(timeout: Duration = .seconds(30)) async throws -> TestProcess.Termination {
        process.signal(SIGTERM)
        return try await process.waitForExit(timeout: timeout)
    }
}

/// Why a `TestProcess` or `ServerProcess` could not start or stop.
public struct ServerProcessError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
