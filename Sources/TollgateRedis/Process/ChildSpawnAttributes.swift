#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs `body` with `posix_spawn` attributes for a child that reacts to signals normally: an
/// empty signal mask and default handling of SIGTERM, SIGINT, SIGQUIT, SIGPIPE, SIGHUP and
/// SIGCHLD. Children inherit the spawning thread's mask, and Dispatch worker threads (where
/// async code runs) block SIGTERM, so a child spawned without this ignores `kill(pid, SIGTERM)`
/// (swift-corelibs-foundation #4772). Used for every redis-server, nginx or tollgate child.
/// - Parameter newProcessGroup: put the child in a process group of its own, so a terminal's
///   ^C reaches only the parent, which then stops the child in order.
public func withChildSpawnAttributes<T>(
    newProcessGroup: Bool = false, _ body: (UnsafeMutablePointer<posix_spawnattr_t>) throws -> T
) rethrows -> T {
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var empty = sigset_t()
    sigemptyset(&empty)
    posix_spawnattr_setsigmask(&attributes, &empty)
    var defaults = sigset_t()
    sigemptyset(&defaults)
    for signal in [SIGTERM, SIGINT, SIGQUIT, SIGPIPE, SIGHUP, SIGCHLD] { sigaddset(&defaults, signal) }
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    var flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF
    if newProcessGroup {
        posix_spawnattr_setpgroup(&attributes, 0)
        flags |= POSIX_SPAWN_SETPGROUP
    }
    posix_spawnattr_setflags(&attributes, Int16(flags))
    return try body(&attributes)
}
