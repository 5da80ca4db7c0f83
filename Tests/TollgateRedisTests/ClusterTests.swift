import Foundation
import Testing
import TollgateRedis
import TollgateTestSupport

@Suite("Redis Cluster routing")
struct ClusterTests {
    @Test("hash slots: CRC16/XMODEM mod 16384 with {hash tag} rules")
    func hashSlots() {
        #expect(HashSlot.of("123456789") == 0x31C3)  // the CRC16 check value
        #expect(HashSlot.of("foo") == 12182)
        #expect(HashSlot.of("{user1000}.following") == HashSlot.of("{user1000}.followers"))
        #expect(HashSlot.of("tg:{a:42}:acct") == HashSlot.of("a:42"))
        #expect(HashSlot.of("foo{}{bar}") == HashSlot.of("foo{}{bar}"))  // an empty tag hashes the whole key
        #expect(HashSlot.of("foo{}{bar}") != HashSlot.of("bar"))
        #expect(HashSlot.of("foo{{bar}}zap") == HashSlot.of("{bar"))
    }

    @Test("MOVED and ASK replies are read; other errors are not redirections")
    func redirects() throws {
        let map = try ClusterSlotMap(clusterSlots: .array([
            .array([.integer(0), .integer(8191), .array([.bulkString(Array("127.0.0.1".utf8)), .integer(7000)]),
                    .array([.bulkString(Array("127.0.0.1".utf8)), .integer(7003)])]),
            .array([.integer(8192), .integer(16383), .array([.bulkString(Array("127.0.0.1".utf8)), .integer(7001)])]),
        ]))
        #expect(map.coversEverySlot && map.primaries.map(\.port) == [7000, 7001])
        #expect(map.primary(for: 8191)?.port == 7000 && map.primary(for: 8192)?.port == 7001)
        #expect(map.replicas[ClusterSlotMap.Node(host: "127.0.0.1", port: 7000)]?.map(\.port) == [7003])
    }

    @Test("a live cluster: keys and functions routed by slot, SCAN over every primary, ASK and MOVED during a slot migration, a primary killed and its replica taking over")
    func liveCluster() async throws {
        let cluster = try await RedisCluster()
        defer { cluster.stop() }
        let client = cluster.client(connections: 2)
        defer { client.close() }

        // Keys all over the slot space, written concurrently (pipelined per node).
        try await withThrowingTaskGroup(of: Void.self) { group in
            for n in 0..<300 { group.addTask { _ = try await client.send("SET", "k\(n)", "v\(n)") } }
            try await group.waitForAll()
        }
        for n in stride(from: 0, to: 300, by: 37) { #expect(try await client.send("GET", "k\(n)").string == "v\(n)") }
        #expect(Set(try await client.scanKeys(matching: "k*")).count == 300)

        // A function library on every primary; FCALL goes where its key lives.
        let library = try RedisFunctionLibrary(code: FunctionLibraryTests.code())
        #expect(try await client.install(library) == .loaded)
        #expect(try await client.loadedCode(of: library) == library.code)
        for n in 0..<20 { _ = try await client.call(library, .fcall("tgtest_set", keys: ["f{\(n)}"], arguments: ["x\(n)"])) }
        #expect(try await client.send("GET", "f{7}").string == "x7")

        // Migrate the slot of one key by hand: while it is MIGRATING the moved key answers
        // ASK, afterwards MOVED; the client follows both.
        let key = "k5"
        let slot = HashSlot.of(key)
        let map = try await cluster.clusterMap(client)
        let source = try #require(map.primary(for: slot))
        let target = try #require(map.primaries.first { $0 != source })
        let sourceNode = try cluster.direct(source)
        let targetNode = try cluster.direct(target)
        defer { sourceNode.close(); targetNode.close() }
        let sourceID = try #require(try await sourceNode.send("CLUSTER", "MYID").string)
        let targetID = try #require(try await targetNode.send("CLUSTER", "MYID").string)
        _ = try await targetNode.send("CLUSTER", "SETSLOT", String(slot), "IMPORTING", sourceID)
        _ = try await sourceNode.send("CLUSTER", "SETSLOT", String(slot), "MIGRATING", targetID)
        _ = try await sourceNode.send("MIGRATE", target.host, String(target.port), "", "0", "5000", "KEYS", key)
        #expect(try await client.send("GET", key).string == "v5")  // ASK, then ASKING + GET on the target
        _ = try await client.send("SET", key, "v5b")  // writes follow ASK too
        for node in [targetNode, sourceNode] { _ = try await node.send("CLUSTER", "SETSLOT", String(slot), "NODE", targetID) }
        #expect(try await client.send("GET", key).string == "v5b")  // MOVED, then the target
        #expect(try await client.cluster?.currentMap().primary(for: slot) == target)

        // Kill a primary: its replica takes over; commands fail at most while that lasts.
        let victimKey = "k11"
        let victim = try #require(try await client.cluster?.currentMap().primary(for: HashSlot.of(victimKey)))
        let victimServer = try #require(cluster.nodes.first { $0.port == victim.port })
        // WAIT counts the replicas that have this connection's writes: write on the victim itself.
        let victimNode = try cluster.direct(victim)
        _ = try await victimNode.send("SET", victimKey, "before")
        var acknowledged: Int64 = 0
        for _ in 0..<60 where acknowledged < 1 {  // the replica may still be in its first sync
            acknowledged = try await victimNode.send("WAIT", "1", "1000").int64 ?? 0
        }
        #expect(acknowledged == 1)
        victimNode.close()
        victimServer.kill()
        var reply: RESPValue?
        let deadline = ContinuousClock.now + .seconds(60)
        while reply == nil, ContinuousClock.now < deadline {
            reply = try? await client.send("GET", victimKey)
            if reply == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(reply?.string == "before")
        #expect(try await client.cluster?.currentMap().primary(for: HashSlot.of(victimKey)) != victim)
        _ = try await client.send("SET", victimKey, "after")
        #expect(try await client.send("GET", victimKey).string == "after")
    }
}

extension RedisCluster {
    /// The slot map as the cluster reports it now.
    func clusterMap(_ client: RedisClient) async throws -> ClusterSlotMap {
        try await #require(client.cluster).refreshedMap()
    }

    /// A plain client on one node (no routing), for CLUSTER commands.
    func direct(_ node: ClusterSlotMap.Node) throws -> RedisClient {
        makeClient(RedisAddress(endpoint: .tcp(host: node.host, port: node.port)))
    }
}
