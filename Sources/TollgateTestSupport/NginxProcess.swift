import Foundation
import TollgateRedis
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A real nginx (Debian's `nginx-light`, which has `auth_request`) as a child process, with its
/// configuration, pid file, logs and temporary folders in a private temporary folder, so it
/// runs the same as root or not. Stop it with `stop()`; it is killed when released.
public final class NginxProcess: Sendable {
    /// The private folder: `nginx.conf`, `nginx.pid`, `error.log` and any log the
    /// configuration writes there.
    public let directory: URL
    /// The free ports handed to the configuration, in order; nginx listens on every one.
    public let ports: [Int]
    private let child: ChildProcess

    private init(directory: URL, ports: [Int], child: ChildProcess) {
        self.directory = directory
        self.ports = ports
        self.child = child
    }

    deinit {
        try? FileManager.default.removeItem(at: directory)
    }

    /// The nginx executable, or an error that says how to install it.
    public static func executable() throws -> String {
        for path in ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"] where FileManager.default.isExecutableFile(atPath: path) {
            return path
        }
        throw NginxError(message: "nginx is not installed (Debian: apt-get install nginx-light)")
    }

    /// Starts nginx and waits until it accepts connections on every port.
    ///
    /// - Parameters:
    ///   - portCount: how many free ports on 127.0.0.1 to pick for the configuration.
    ///   - http: the inside of the `http { }` block (servers, upstreams, log formats), given
    ///     the private folder's path and the ports. The rest (pid, error log, temporary paths,
    ///     one worker) is written here.
    /// A port taken by someone else between picking and binding is retried with new ports.
    public static func start(
        portCount: Int, http: (_ directory: String, _ ports: [Int]) -> String
    ) async throws -> NginxProcess {
        let nginx = try executable()
        var lastError = ""
        for _ in 0..<3 {
            let directory = FileManager.default.temporaryDirectory
                .appendingPathComponent("tollgate-nginx-\(UUID().uuidString.prefix(8))", isDirectory: true)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let ports = try (0..<portCount).map { _ in try RedisServer.freePort() }
            let path = directory.path
            // As root, nginx would switch its worker to `nobody`; keep it as the test's user.
            let user = geteuid() == 0 ? "user root;\n" : ""
            let configuration = """
                \(user)worker_processes 1;
                pid \(path)/nginx.pid;
                error_log \(path)/error.log info;
                events { worker_connections 512; }
                http {
                    access_log off;
                    client_body_temp_path \(path)/client_body;
                    proxy_temp_path \(path)/proxy;
                    fastcgi_temp_path \(path)/fastcgi;
                    uwsgi_temp_path \(path)/uwsgi;
                    scgi_temp_path \(path)/scgi;
                \(http(path, ports))
                }

                """
            let configurationPath = directory.appendingPathComponent("nginx.conf").path
            try configuration.write(toFile: configurationPath, atomically: true, encoding: .utf8)
            let child = try ChildProcess.spawn(
                nginx, ["-p", path + "/", "-c", configurationPath, "-e", path + "/error.log", "-g", "daemon off;"],
                stdout: directory.appendingPathComponent("stdout.log").path,
                stderr: directory.appendingPathComponent("stderr.log").path)
            let process = NginxProcess(directory: directory, ports: ports, child: child)
            let deadline = ContinuousClock.now + .seconds(15)
            while ContinuousClock.now < deadline, child.isRunning {
                if ports.allSatisfy(Self.accepts) { return process }
                try await Task.sleep(for: .milliseconds(20))
            }
            await child.stop(signal: SIGTERM, timeout: .seconds(5))
            lastError = process.file("error.log") + process.file("stderr.log")
            guard lastError.contains("Address already in use") else { break }
        }
        throw NginxError(message: "nginx did not start; its log:\n\(lastError.suffix(3000))")
    }

    /// Graceful stop (SIGQUIT: finish open requests), then SIGKILL if it lingers past 10 s;
    /// the raw wait status (0: exited with status 0).
    @discardableResult
    public func stop() async -> Int32 {
        await child.stop(signal: SIGQUIT, timeout: .seconds(10))
    }

    /// Whether nginx is still running.
    public var isRunning: Bool { child.isRunning }

    /// The text of a file in the private folder (a log), or "" when there is none yet.
    public func file(_ name: String) -> String {
        (try? String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)) ?? ""
    }

    /// Whether something accepts TCP connections on 127.0.0.1:`port`.
    public static func accepts(_ port: Int) -> Bool {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }
}

/// Why nginx (or another child) could not be started.
public struct NginxError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
    public init(message: String) { self.message = message }
}
