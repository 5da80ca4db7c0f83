import Foundation
import Synchronization
import TollgateRedis
#if canImport(Glibc)
import Glibc
#endif

/// A child process of a test (redis-server, nginx) started with posix_spawn, default signal
/// handling and an empty signal mask (Dispatch threads, where async code runs, block SIGTERM,
/// and a child inherits the mask: it would ignore a stop). stdin is /dev/null; stdout and
/// stderr go to files. Killed (SIGKILL) and reaped when released while still running.
///
/// Its end is learnt with `waitpid` on its own pid, never with Foundation's
/// `Process.waitUntilExit()`: that spins the calling thread's run loop and can park it for
/// good off the main thread, and a parked thread of the shared pool stalls every test.
public final class ChildProcess: Sendable {
    /// The process id.
    public let pid: pid_t
    private let exitStatus: Mutex<Int32?>

    private init(pid: pid_t) {
        self.pid = pid
        self.exitStatus = Mutex(nil)
    }

    deinit {
        if isRunning {
            kill(pid, SIGKILL)
            _ = reap(blocking: true)
        }
    }

    /// Starts `executable` with `arguments` (without argv[0]) and this process's environment
    /// merged with `environment`; its stdout and stderr are written to the files named (for
    /// example `/dev/null`).
    public static func spawn(
        _ executable: String, _ arguments: [String], environment: [String: String] = [:],
        stdout: String, stderr: String
    ) throws -> ChildProcess {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let merged = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let envp: [UnsafeMutablePointer<CChar>?] = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { envp.forEach { free($0) } }
        var pid: pid_t = 0
        let result = withChildSpawnAttributes { attributes in posix_spawn(&pid, executable, &actions, attributes, argv, envp) }
        guard result == 0 else {
            throw ChildProcessError(message: "cannot start \(executable): \(String(cString: strerror(result)))")
        }
        return ChildProcess(pid: pid)
    }

    /// Whether the process has not exited yet.
    public var isRunning: Bool { reap(blocking: false) == nil }

    /// The raw wait status once the process has exited.
    public var status: Int32? { reap(blocking: false) }

    /// Sends `signal` if the process still runs.
    public func signal(_ signal: Int32) {
        if isRunning { kill(pid, signal) }
    }

    /// Sends `signal`, waits up to `timeout` for the exit, then escalates to SIGKILL; the
    /// raw wait status (0: exited with status 0).
    @discardableResult
    public func stop(signal: Int32 = SIGTERM, timeout: Duration = .seconds(10)) async -> Int32 {
        if let status = reap(blocking: false) { return status }
        kill(pid, signal)
        if let status = await waitForExit(timeout: timeout) { return status }
        kill(pid, SIGKILL)
        return reap(blocking: true) ?? -1
    }

    /// `stop` for callers that cannot await (a `deinit`, a synchronous stop): the same bounded
    /// wait, polling on the calling thread.
    @discardableResult
    public func stopWaiting(signal: Int32 = SIGTERM, timeout: Duration = .seconds(5)) -> Int32 {
        if let status = reap(blocking: false) { return status }
        kill(pid, signal)
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let status = reap(blocking: false) { return status }
            usleep(5_000)
        }
        kill(pid, SIGKILL)
        return reap(blocking: true) ?? -1
    }

    /// Waits up to `timeout` for the exit, polling without blocking a thread; the wait status,
    /// or nil while it still runs.
    public func waitForExit(timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let status = reap(blocking: false) { return status }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return reap(blocking: false)
    }

    private func reap(blocking: Bool) -> Int32? {
        exitStatus.withLock { known -> Int32? in
            if let known { return known }
            var status: Int32 = 0
            var result: pid_t
            repeat { result = waitpid(pid, &status, blocking ? 0 : WNOHANG) } while result == -1 && errno == EINTR
            if result == pid {
                known = status
            } else if result == -1 {
                // Reaped elsewhere (ECHILD): it is gone all the same.
                known = -1
            }
            return known
        }
    }
}

/// Why a test's child process could not be started.
public struct ChildProcessError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
    public init(message: String) { self.message = message }
}
