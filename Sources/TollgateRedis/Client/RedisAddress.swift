import Foundation

/// Where a Redis server listens, parsed from `redis://[user:password@]host:port[/db]`
/// or `unix:///path/to/socket[?db=N]` (user and password may also be given as
/// `?user=`/`?password=` on a unix address).
public struct RedisAddress: Sendable, Hashable, CustomStringConvertible {
    /// How to reach the server.
    public enum Endpoint: Sendable, Hashable {
        case tcp(host: String, port: Int)
        case unixSocket(path: String)
    }

    public var endpoint: Endpoint
    /// The ACL user, when the address names one.
    public var user: String?
    /// The password (for `AUTH`), when the address names one.
    public var password: String?
    /// The database to `SELECT` after connecting.
    public var database: Int

    public init(endpoint: Endpoint, user: String? = nil, password: String? = nil, database: Int = 0) {
        self.endpoint = endpoint
        self.user = user
        self.password = password
        self.database = database
    }

    /// Parses an address; throws `invalidAddress` with a message that says what is wrong.
    public init(parsing text: String) throws(RedisError) {
        func invalid(_ why: String) -> RedisError {
            RedisError(.invalidAddress, "\(why) in '\(RedisAddress.redacted(text))'; expected redis://[user:password@]host:port[/db] or unix:///path/to/socket")
        }
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased() else {
            throw invalid("not a URL")
        }
        let query = Dictionary(
            (components.queryItems ?? []).map { ($0.name, $0.value ?? "") },
            uniquingKeysWith: { _, last in last }
        )
        switch scheme {
        case "redis":
            guard let host = components.host, !host.isEmpty else { throw invalid("no host") }
            let port = components.port ?? 6379
            guard (1...65535).contains(port) else { throw invalid("port out of range") }
            var database = 0
            let path = components.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
            if !path.isEmpty {
                guard let number = Int(path), number >= 0 else { throw invalid("database must be a number") }
                database = number
            }
            let unbracketed = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
            self.init(
                endpoint: .tcp(host: unbracketed, port: port),
                user: components.user.flatMap { $0.isEmpty ? nil : $0 },
                password: components.password,
                database: database
            )
        case "unix":
            let path = components.path
            // `unix://tmp/redis.sock` would otherwise quietly mean `/redis.sock` on host "tmp".
            guard (components.host ?? "").isEmpty else { throw invalid("a unix socket address has no host (three slashes: unix:///path)") }
            guard path.hasPrefix("/") else { throw invalid("a unix socket needs an absolute path") }
            var database = 0
            if let value = query["db"] {
                guard let number = Int(value), number >= 0 else { throw invalid("db must be a number") }
                database = number
            }
            self.init(endpoint: .unixSocket(path: path), user: query["user"], password: query["password"], database: database)
        default:
            throw invalid("unknown scheme '\(scheme)'")
        }
    }

    /// The address with any password hidden, fit for logs and messages.
    public var description: String {
        var auth = ""
        if let user { auth = user + (password == nil ? "" : ":***") + "@" } else if password != nil { auth = ":***@" }
        switch endpoint {
        case .tcp(let host, let port):
            let shownHost = host.contains(":") ? "[\(host)]" : host
            return "redis://\(auth)\(shownHost):\(port)" + (database == 0 ? "" : "/\(database)")
        case .unixSocket(let path):
            return "unix://\(path)" + (database == 0 ? "" : "?db=\(database)")
        }
    }

    /// `text` with the password hidden, whether or not it parses: the `user:password@` part and
    /// any `password=` query item.
    private static func redacted(_ text: String) -> String {
        var result = text
        if let schemeEnd = result.range(of: "://") {
            let authorityEnd = result[schemeEnd.upperBound...].firstIndex { $0 == "?" || $0 == "#" } ?? result.endIndex
            if let at = result[schemeEnd.upperBound..<authorityEnd].lastIndex(of: "@"),
               let colon = result[schemeEnd.upperBound..<at].firstIndex(of: ":") {
                result.replaceSubrange(result.index(after: colon)..<at, with: "***")
            }
        }
        if let question = result.firstIndex(of: "?") {
            let items = result[result.index(after: question)...].split(separator: "&", omittingEmptySubsequences: false).map { item in
                item.lowercased().hasPrefix("password=") ? "password=***" : String(item)
            }
            result = String(result[...question]) + items.joined(separator: "&")
        }
        return result
    }
}
