import Foundation
import TollgateRedis
#if canImport(Glibc)
import Glibc
#endif

/// The one way tests start a child process (redis-server, nginx, `tollgate`, openssl,
/// Python): posix_spawn with an empty signal mask and default signal handling, for threads
/// of the test process (Dispatch workers) block SIGTERM, and a child spawned from one would
/// inherit that and ignore a stop. The environment is this process's without `TOLLGATE_*`
/// variables (a developer's shell must not change what a test runs), plus what is given.
///
/// Its end is learnt with `waitpid`, never with Foundation's `Process.waitUntilExit()`: that
/// spins the calling thread's run loop and can park it for good off the main thread, and a
/// parked thread of the shared pool stalls every test.
enum Spawn {
    /// Where a standard output goes.
    enum Output {
        /// To a socket whose read end `Spawned` hands back.
        case captured
        /// To a file, created or truncated (`/dev/null` to drop it).
        case file(String)
    }

    struct Spawned {
        let pid: pid_t
        /// The read ends of captured outputs, to be read to their end (`readLoop`).
        let stdout: Int32?
        let stderr: Int32?
    }

    static func spawn(
        _ executable: String, _ arguments: [String], environment: [String: String], stdin: [UInt8]? = nil,
        stdout: Output, stderr: Output
    ) throws(ChildProcessError) -> Spawned {
        // Socket pairs made close-on-exec atomically (Glibc does not export pipe2): children
        // spawned at the same time by other tests must not inherit the write ends, or the
        // readers would never see the end of the output.
        var opened: [Int32] = []
        func pair() throws(ChildProcessError) -> (parent: Int32, child: Int32) {
            var ends: [Int32] = [-1, -1]
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0 else {
                throw ChildProcessError(message: "socketpair: \(String(cString: strerror(errno)))")
            }
            opened += ends
            return (ends[0], ends[1])
        }
        var childEnds: [Int32] = []
        defer { childEnds.forEach { close($0) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var input: Int32?
        var readEnds: [Int32?] = [nil, nil]
        do throws(ChildProcessError) {
            if stdin != nil {
                let ends = try pair()
                input = ends.parent
                childEnds.append(ends.child)
                posix_spawn_file_actions_adddup2(&actions, ends.child, 0)
            } else {
                posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            }
            for (index, output) in [stdout, stderr].enumerated() {
                let descriptor = Int32(index + 1)
                switch output {
                case .file(let path):
                    posix_spawn_file_actions_addopen(&actions, descriptor, path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
                case .captured:
                    let ends = try pair()
                    readEnds[index] = ends.parent
                    childEnds.append(ends.child)
                    posix_spawn_file_actions_adddup2(&actions, ends.child, descriptor)
                }
            }
        } catch {
            opened.forEach { close($0) }
            childEnds = []
            throw error
        }
        var variables = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("TOLLGATE_") }
        variables.merge(environment) { _, new in new }
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = variables.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let result = withChildSpawnAttributes { attributes in posix_spawn(&pid, executable, &actions, attributes, argv, envp) }
        guard result == 0 else {
            ([input] + readEnds).compactMap { $0 }.forEach { close($0) }
            throw ChildProcessError(message: "cannot start \(executable): \(String(cString: strerror(result)))")
        }
        if let input, let stdin { writeAll(stdin, to: input) }
        return Spawned(pid: pid, stdout: readEnds[0], stderr: readEnds[1])
    }

    /// Writes `bytes` to `descriptor` on a thread of its own (a child that reads slowly must
    /// not block the caller), then closes it so the child sees the end of its input.
    private static func writeAll(_ bytes: [UInt8], to descriptor: Int32) {
        let thread = Thread {
            var offset = 0
            while offset < bytes.count {
                let written = bytes[offset...].withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if written > 0 {
                    offset += written
                } else if written < 0 && errno == EINTR {
                    continue
                } else {
                    break
                }
            }
            close(descriptor)
        }
        thread.start()
    }

    /// Reads `descriptor` to its end on a thread of its own, handing over each chunk; closes it.
    static func readLoop(_ descriptor: Int32, _ received: @escaping @Sendable ([UInt8]) -> Void) {
        let thread = Thread {
            var buffer = [UInt8](repeating: 0, count: 16 * 1024)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                if count > 0 {
                    received(Array(buffer[0..<count]))
                } else if count == 0 || errno != EINTR {
                    break
                }
            }
            close(descriptor)
        }
        thread.start()
    }

    /// Waits for `pid` to end on a thread of its own.
    static func waitLoop(_ pid: pid_t, _ ended: @escaping @Sendable (TestProcess.Termination) -> Void) {
        let thread = Thread {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) == -1 {
                guard errno == EINTR else {
                    ended(.exited(-1))
                    return
                }
            }
            ended(TestProcess.Termination(waitStatus: status))
        }
        thread.start()
    }
}

extension TestProcess.Termination {
    /// The termination a raw `waitpid` status describes (WIFEXITED / WEXITSTATUS / WTERMSIG,
    /// which Swift does not import).
    init(waitStatus status: Int32) {
        self = status & 0x7F == 0 ? .exited((status >> 8) & 0xFF) : .signaled(status & 0x7F)
    }
}
