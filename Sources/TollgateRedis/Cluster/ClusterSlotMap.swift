/// Which primary serves each of the 16384 slots, read from `CLUSTER SLOTS`.
///
/// A plain value: the cluster client swaps in a new map after a refresh and patches one slot
/// on `MOVED`, so routing never waits on a lock held across I/O.
public struct ClusterSlotMap: Sendable, Hashable {
    /// A cluster node, by the host and port it announces.
    public struct Node: Sendable, Hashable, CustomStringConvertible {
        public var host: String
        public var port: Int
        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
        public var description: String { "\(host):\(port)" }
    }

    /// The primary of each slot (index = slot), `nil` where no node serves it.
    private var owners: [Node?]
    /// The replicas of each primary, as last reported.
    public private(set) var replicas: [Node: [Node]]

    /// An empty map (every slot unserved).
    public init() {
        owners = Array(repeating: nil, count: HashSlot.count)
        replicas = [:]
    }

    /// Reads a `CLUSTER SLOTS` reply: `[[start, end, [host, port, id...], [replica]...], ...]`.
    /// A node announced with an empty host (a node that has not learnt its own address, as in
    /// a one-node cluster) is taken to be on `askedHost`, the host that answered.
    public init(clusterSlots reply: RESPValue, askedHost: String = "127.0.0.1") throws(RedisError) {
        self.init()
        guard let ranges = reply.array else {
            throw RedisError(.unexpectedReply, "CLUSTER SLOTS answered \(reply)")
        }
        for range in ranges {
            guard let fields = range.array, fields.count >= 3,
                  let start = fields[0].int64, let end = fields[1].int64,
                  start >= 0, end < HashSlot.count, start <= end,
                  let primary = Self.node(fields[2], askedHost) else {
                throw RedisError(.unexpectedReply, "CLUSTER SLOTS has a malformed range: \(range)")
            }
            for slot in Int(start)...Int(end) { owners[slot] = primary }
            replicas[primary] = fields.dropFirst(3).compactMap { Self.node($0, askedHost) }
        }
    }

    private static func node(_ value: RESPValue, _ askedHost: String) -> Node? {
        guard let parts = value.array, parts.count >= 2, let host = parts[0].string,
              let port = parts[1].int64 else { return nil }
        return Node(host: host.isEmpty || host == "?" ? askedHost : host, port: Int(port))
    }

    /// The primary serving `slot`, if any.
    public func primary(for slot: Int) -> Node? { owners[slot] }

    /// Every primary that serves at least one slot, in a stable order.
    public var primaries: [Node] {
        Array(Set(owners.compactMap { $0 })).sorted { ($0.host, $0.port) < ($1.host, $1.port) }
    }

    /// Whether every slot has a primary.
    public var coversEverySlot: Bool { !owners.contains(nil) }

    /// Points one slot at `node` (after a `MOVED` reply).
    public mutating func assign(_ slot: Int, to node: Node) {
        owners[slot] = node
    }
}

/// A `MOVED` or `ASK` redirection read from an error reply.
struct ClusterRedirect: Sendable, Hashable {
    enum Kind: Sendable { case moved, ask }
    var kind: Kind
    var slot: Int
    var node: ClusterSlotMap.Node

    /// Parses `MOVED 3999 127.0.0.1:6381` or `ASK 3999 127.0.0.1:6381`; `nil` for other errors.
    init?(_ message: String) {
        let parts = message.split(separator: " ")
        guard parts.count == 3, let slot = Int(parts[1]), let colon = parts[2].lastIndex(of: ":"),
              let port = Int(parts[2][parts[2].index(after: colon)...]) else { return nil }
        switch parts[0] {
        case "MOVED": kind = .moved
        case "ASK": kind = .ask
        default: return nil
        }
        self.slot = slot
        var host = String(parts[2][..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        node = ClusterSlotMap.Node(host: host, port: port)
    }
}
