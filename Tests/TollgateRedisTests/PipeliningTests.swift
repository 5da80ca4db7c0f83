import Testing
import TollgateRedis
import TollgateTestSupport

@Suite("Pipelining and concurrency")
struct PipeliningTests {
    @Test func concurrentIncrementsAllLandAndEachReplyIsUnique() async throws {
        let server = try await RedisServer()
        defer { server.stop() }
        let client = server.client(connections: 2)
        defer { client.close() }
        let tasks = 64
        let perTask = 500

        let replies = try await withThrowingTaskGroup(of: [Int64].self) { group in
            for _ in 0..<tasks {
                group.addTask {
                    var seen: [Int64] = []
                    seen.reserveCapacity(perTask)
                    for _ in 0..<perTask {
                        let reply = try await client.send("INCR", "counter")
                        guard case .integer(let value) = reply else {
                            Issue.record("INCR answered \(reply)")
                            continue
                        }
                        seen.append(value)
                    }
                    return seen
                }
            }
            var all: [Int64] = []
            for try await seen in group {
                // Each caller's own replies grow: a caller never sees an older reply after a newer one.
                #expect(seen == seen.sorted())
                all += seen
            }
            return all
        }
        let total = Int64(tasks * perTask)
        #expect(try await client.send("GET", "counter") == .bulkString(utf8(String(total))))
        // Every INCR got its own reply: the values 1...32000, each exactly once.
        #expect(replies.count == tasks * perTask)
        #expect(Set(replies) == Set(1...total))
        #expect(client.outstandingCommands == 0)
    }

    @Test func thousandCallersEachGetTheirOwnReplies() async throws {
        let server = try await RedisServer()
        defer { server.stop() }
        let client = server.client(connections: 2)
        defer { client.close() }
        let maxOutstanding = SharedCounter()

        let mismatches = try await withThrowingTaskGroup(of: [String].self) { group in
            for index in 0..<1000 {
                group.addTask {
                    var problems: [String] = []
                    let key = "key:\(index)"
                    let value = "value-\(index)-" + String(repeating: Character(Unicode.Scalar(UInt8(65 + index % 26))), count: index % 50)
                    let set = try await client.send("SET", key, value)
                    if set != .simpleString("OK") { problems.append("SET \(key) -> \(set)") }
                    maxOutstanding.raise(to: client.outstandingCommands)
                    let get = try await client.send("GET", key)
                    if get != .bulkString(utf8(value)) { problems.append("GET \(key) -> \(get)") }
                    // Replies of other types and error replies interleave without crossing callers.
                    let incr = try await client.send("INCRBY", "n:\(index)", String(index))
                    if incr != .integer(Int64(index)) { problems.append("INCRBY n:\(index) -> \(incr)") }
                    let error = try await client.sendReturningErrors(RedisCommand(["LPUSH", key, "x"]))
                    if case .error(let message) = error, message.hasPrefix("WRONGTYPE") {} else {
                        problems.append("LPUSH \(key) -> \(error)")
                    }
                    let range = try await client.send("LRANGE", "missing:\(index)", "0", "-1")
                    if range != .array([]) { problems.append("LRANGE -> \(range)") }
                    return problems
                }
            }
            var all: [String] = []
            for try await problems in group { all += problems }
            return all
        }
        #expect(mismatches.isEmpty, "\(mismatches.prefix(10))")
        #expect(try await client.send("DBSIZE") == .integer(2000))  // key:0...999 and n:0...999
        #expect(client.outstandingCommands == 0)
        // With 1000 concurrent callers on two connections, commands really were queued together.
        #expect(maxOutstanding.value > 2)
    }

    @Test func sequentialCommandsOnAnIdleClientLeaveNothingOutstanding() async throws {
        let server = try await RedisServer()
        defer { server.stop() }
        let client = server.client(connections: 4)
        defer { client.close() }
        #expect(client.outstandingCommands == 0)
        for index in 0..<50 {
            #expect(try await client.send("RPUSH", "list", String(index)) == .integer(Int64(index + 1)))
            #expect(client.outstandingCommands == 0)
        }
        let all = try await client.send("LRANGE", "list", "0", "-1")
        #expect(all == .array((0..<50).map { .bulkString(utf8(String($0))) }))
    }
}
