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

extension RedisAddress {
    /// Parses a Redis Cluster's seed list: `host:port[,host:port...]`, each item also as
    /// `redis://[user:password@]host:port`. The credentials of the first item that has them
    /// apply to every node.
    public static func clusterSeeds(parsing text: String) throws(RedisError) -> [RedisAddress] {
        var seeds: [RedisAddress] = []
        for item in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
            let address = try RedisAddress(parsing: item.contains("://") ? item : "redis://" + item)
            guard case .tcp = address.endpoint else {
                throw RedisError(.invalidAddress, "a cluster node is host:port, not a unix socket ('\(item)')")
            }
            guard address.database == 0 else {
                throw RedisError(.invalidAddress, "a Redis Cluster has only database 0 ('\(item)')")
            }
            seeds.append(address)
        }
        guard !seeds.isEmpty else {
            throw RedisError(.invalidAddress, "no cluster node given; expected host:port[,host:port...]")
        }
        if let credentialed = seeds.first(where: { $0.password != nil || $0.user != nil }) {
            seeds = seeds.map { RedisAddress(endpoint: $0.endpoint, user: credentialed.user, password: credentialed.password) }
        }
        return seeds
    }
}

/// Where Tollgate's Redis is: one server, or a Redis Cluster reached through seed nodes.
public enum RedisTopology: Sendable, Hashable, CustomStringConvertible {
    /// One server (or a primary behind a proxy).
    case single(RedisAddress)
    /// A Redis Cluster; any reachable seed gives the slot map.
    case cluster([RedisAddress])

    /// The first address: the server, or the first seed.
    public var primaryAddress: RedisAddress {
        switch self {
        case .single(let address): return address
        case .cluster(let seeds): return seeds[0]
        }
    }

    /// Every address known (the seeds on a cluster).
    public var addresses: [RedisAddress] {
        switch self {
        case .single(let address): return [address]
        case .cluster(let seeds): return seeds
        }
    }

    /// A client for this topology; `configuration.address` is replaced by the topology's.
    /// Throws `invalidAddress` for a cluster seed that is not a TCP address.
    public func client(_ configuration: RedisConfiguration) throws(RedisError) -> RedisClient {
        var configuration = configuration
        configuration.address = primaryAddress
        switch self {
        case .single:
            return RedisClient(configuration: configuration)
        case .cluster(let seeds):
            return try RedisClient(clusterSeeds: seeds, configuration: configuration)
        }
    }

    public var description: String {
        switch self {
        case .single(let address): return address.description
        case .cluster(let seeds): return "cluster " + seeds.map(\.description).joined(separator: ",")
        }
    }
}
