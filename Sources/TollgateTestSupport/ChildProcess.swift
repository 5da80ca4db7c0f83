import Foundation
import Synchronization
import TollgateRedis
#if canImport(Glibc)
import Glibc
#endif

/// A child process of a test whose output goes to files (redis-server, nginx), started by
/// `Spawn`; stdin is /dev/null. Its end is polled with `waitpid` on its own pid. Killed
/// (SIGKILL) and reaped when released while still running.
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

    /// Starts `executable` with `arguments` (without argv[0]); the environment is this
    /// process's without `TOLLGATE_*` variables, plus `environment`. Its stdout and stderr are
    /// written to the files named (for example `/dev/null`).
    public static func spawn(
        _ executable: String, _ arguments: [String], environment: [String: String] = [:],
        stdout: String, stderr: String
    ) throws(ChildProcessError) -> ChildProcess {
        ChildProcess(pid: try Spawn.spawn(executable, arguments, environment: environment, stdout: .file(stdout), stderr: .file(stderr)).pid)
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
        deliver(signal)
        if let status = await waitForExit(timeout: timeout) { return status }
        kill(pid, SIGKILL)
        return reap(blocking: true) ?? -1
    }

    /// `stop` for callers that cannot await (a `deinit`, a synchronous stop): the same bounded
    /// wait, polling on the calling thread.
    @discardableResult
    public func stopWaiting(signal: Int32 = SIGTERM, timeout: Duration = .seconds(5)) -> Int32 {
        if let status = reap(blocking: false) { return status }
        deliver(signal)
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let status = reap(blocking: false) { return status }
            usleep(5_000)
        }
        kill(pid, SIGKILL)
        return reap(blocking: true) ?? -1
    }

    /// Sends a stopping signal and SIGCONT after it: a process a fault test left paused
    /// (SIGSTOP) acts on it at once instead of holding the caller until the SIGKILL.
    private func deliver(_ signal: Int32) {
        kill(pid, signal)
        if signal != SIGKILL { kill(pid, SIGCONT) }
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
