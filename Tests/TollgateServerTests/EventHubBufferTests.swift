import Logging
import Testing
import TollgateCore
import TollgateRedis
@testable import TollgateServer

/// What makes a subscriber lag, on the hub itself (no Redis: nothing here runs the hub's
/// subscription): only its own events filling its buffer, never gaps or heartbeats.
@Suite("event hub buffers")
struct EventHubBufferTests {
    static func hub(bufferSize: Int) throws -> EventHub {
        EventHub(redis: RedisConfiguration(address: try RedisAddress(parsing: "redis://127.0.0.1:1")),
                 configuration: .init(bufferSize: bufferSize), logger: Logger(label: "hub-test"))
    }

    static func event(_ account: String, _ n: Int) throws -> AccountEvent {
        let key = "tg:{a:\(account)}:acct"
        return try #require(AccountEvent(message: Array("\(1_700_000_000_000 + n)-0|debit|-1|100|0|1700000000000|\(key)".utf8)))
    }

    @Test("a flood of gaps and heartbeats (the Redis subscription dropping under load) never cuts a calm subscriber")
    func gapsDoNotFillTheBuffer() async throws {
        let hub = try Self.hub(bufferSize: 4)
        let calm = hub.subscribe(.init(account: try AccountID("calm")))
        defer { calm.cancel() }
        for _ in 0..<1_000 {
            hub.broadcast(.gap)
            hub.broadcast(.heartbeat)
        }
        // Room is left for its own events: two slots hold one gap and one heartbeat.
        hub.dispatch(try Self.event("calm", 1))
        hub.dispatch(try Self.event("calm", 2))
        #expect(!calm.lagged)
        var iterator = calm.items.makeAsyncIterator()
        var kinds: [String] = []
        for _ in 0..<4 {
            switch await iterator.next() {
            case .gap: kinds.append("gap")
            case .heartbeat: kinds.append("heartbeat")
            case .event(let event): kinds.append(event.entryID.description)
            case nil: kinds.append("end")
            }
        }
        #expect(kinds == ["gap", "heartbeat", "1700000000001-0", "1700000000002-0"])
        // Once taken, the next gap is queued again.
        hub.broadcast(.gap)
        if case .gap = await iterator.next() {} else { Issue.record("the next gap was not queued") }
    }

    @Test("a subscriber whose own events overflow its buffer is cut off as lagging; other accounts' events never count")
    func ownEventsLag() async throws {
        let hub = try Self.hub(bufferSize: 4)
        let stuck = hub.subscribe(.init(account: try AccountID("stuck")))
        let calm = hub.subscribe(.init(account: try AccountID("calm")))
        defer {
            stuck.cancel()
            calm.cancel()
        }
        for n in 0..<100 { hub.dispatch(try Self.event("stuck", n)) }
        #expect(stuck.lagged)
        #expect(!calm.lagged)
        // The lagging one's stream ends after what it held.
        var count = 0
        for await _ in stuck.items { count += 1 }
        #expect(count == 4)
    }
}
