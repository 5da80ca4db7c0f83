import Foundation
import Synchronization
import Testing
import TollgateRedis
import TollgateTestSupport

/// A client with explicit, test-friendly timeouts for any address.
func makeClient(
    _ address: RedisAddress,
    connections: Int = 1,
    connectTimeout: Duration = .seconds(1),
    commandTimeout: Duration = .seconds(2),
    reconnectBackoff: Duration = .milliseconds(10)
) -> RedisClient {
    RedisClient(configuration: RedisConfiguration(
        address: address,
        connectTimeout: connectTimeout,
        commandTimeout: commandTimeout,
        connectionCount: connections,
        reconnectBackoff: reconnectBackoff
    ))
}

/// Runs `body` and returns the `RedisError` it threw, or `nil` when it did not throw.
func redisError(_ body: () async throws(RedisError) -> some Any) async -> RedisError? {
    do {
        _ = try await body()
        return nil
    } catch {
        return error
    }
}

/// How long `body` took, and what it returned or threw.
func timed<T>(_ body: () async throws(RedisError) -> T) async -> (Result<T, RedisError>, Duration) {
    let start = ContinuousClock.now
    let result: Result<T, RedisError>
    do { result = .success(try await body()) } catch { result = .failure(error) }
    return (result, ContinuousClock.now - start)
}

/// A command from binary-safe parts.
func command(_ name: String, _ arguments: [UInt8]...) -> RedisCommand {
    var command = RedisCommand(name)
    for argument in arguments { command.append(argument) }
    return command
}

/// UTF-8 bytes of a string, for comparing with `.bulkString` replies.
func utf8(_ text: String) -> [UInt8] { Array(text.utf8) }

/// Polls `condition` until it holds or `timeout` passes; returns whether it held.
func eventually(
    within timeout: Duration = .seconds(5),
    every interval: Duration = .milliseconds(20),
    _ condition: () async -> Bool
) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: interval)
    }
    return await condition()
}

/// A counter that concurrent tasks can share.
final class SharedCounter: Sendable {
    private let storage = Atomic<Int>(0)
    var value: Int { storage.load(ordering: .relaxed) }
    func increment() { storage.add(1, ordering: .relaxed) }
    /// Raises the value to `candidate` when that is larger.
    func raise(to candidate: Int) { storage.max(candidate, ordering: .relaxed) }
}
