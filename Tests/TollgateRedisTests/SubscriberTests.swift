import Testing
import TollgateRedis
import TollgateTestSupport

// The limit only catches a hang; a test Redis alone may take a minute to start on a loaded machine.
@Suite("Pub/sub subscriber", .timeLimit(.minutes(5)))
struct SubscriberTests {
    /// The next event of a subscription (nil once it ended).
    static func next(_ iterator: inout AsyncStream<RedisSubscriber.Event>.Iterator) async -> RedisSubscriber.Event? {
        await iterator.next()
    }

    @Test("a consumer that falls behind loses the overflow, is told how much, and then gets what follows")
    func boundedBuffer() async throws {
        let server = try await RedisServer()
        defer { server.stop() }
        let subscriber = RedisSubscriber(configuration: .init(address: server.address), channels: ["tg:test"], bufferLimit: 8)
        defer { subscriber.close() }
        var events = subscriber.events.makeAsyncIterator()
        #expect(await Self.next(&events) == .subscribed(resumed: false))

        let client = makeClient(server.address)
        defer { client.close() }
        for n in 0..<50 {
            let receivers = try await client.send(RedisCommand(["PUBLISH", "tg:test", "m\(n)"]))
            #expect(receivers == .integer(1))
        }
        // Let the subscriber's thread read the 50 while nobody consumes. A loaded machine may give
        // it less time than that, so what it had not read yet may still arrive after the report:
        // every message is then either delivered in order or counted as dropped, never both.
        try await Task.sleep(for: .milliseconds(500))
        var received: [RedisSubscriber.Event] = []
        var delivered: [Int] = [], droppedTotal = 0
        while delivered.count + droppedTotal < 50, received.count < 60 {
            let event = try #require(await Self.next(&events))
            received.append(event)
            switch event {
            case .message(_, let payload): delivered.append(Int(String(decoding: payload.dropFirst(), as: UTF8.self)) ?? -1)
            case .dropped(let count): droppedTotal += count
            default: Issue.record("unexpected \(event)")
            }
        }
        let kept = (0..<8).map { RedisSubscriber.Event.message(channel: "tg:test", payload: Array("m\($0)".utf8)) }
        #expect(Array(received.prefix(8)) == kept, "\(received)")
        if received.count > 8, case .dropped(let count) = received[8] { #expect(count >= 1) } else { Issue.record("no drop report after the kept 8: \(received)") }
        #expect(delivered == delivered.sorted() && Set(delivered).count == delivered.count, "\(delivered)")
        #expect(delivered.count + droppedTotal == 50, "\(received)")

        // Room again: what follows arrives.
        _ = try await client.send(RedisCommand(["PUBLISH", "tg:test", "later"]))
        #expect(await Self.next(&events) == .message(channel: "tg:test", payload: Array("later".utf8)))
    }

    @Test("a lost connection is restored and said so")
    func resubscribesAfterKill() async throws {
        let server = try await RedisServer()
        defer { server.stop() }
        let subscriber = RedisSubscriber(configuration: .init(address: server.address), channels: ["tg:test"])
        defer { subscriber.close() }
        var events = subscriber.events.makeAsyncIterator()
        #expect(await Self.next(&events) == .subscribed(resumed: false))
        let client = makeClient(server.address)
        defer { client.close() }
        let killed = try await client.send(RedisCommand(["CLIENT", "KILL", "TYPE", "pubsub"]))
        #expect(killed == .integer(1))
        #expect(await Self.next(&events) == .subscribed(resumed: true))
        _ = try await client.send(RedisCommand(["PUBLISH", "tg:test", "back"]))
        #expect(await Self.next(&events) == .message(channel: "tg:test", payload: Array("back".utf8)))
    }
}
