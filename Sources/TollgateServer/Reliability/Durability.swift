import TollgateRedis

/// How much an acknowledged decision survives (`--durability`; docs/RELIABILITY.md).
public enum Durability: String, Sendable, CaseIterable {
    /// AOF on, fsync every second: a crash of Redis itself loses nothing (the kernel has the
    /// writes); a crash of the machine may lose the last second.
    case normal
    /// AOF on, fsync before every reply: an acknowledged decision survives a crash of Redis or
    /// of the machine.
    case strict

    /// The `appendfsync` setting this mode needs.
    public var appendfsync: String { self == .strict ? "always" : "everysec" }

    /// Reads Redis' persistence settings and says, for people, why they cannot deliver this
    /// mode; empty when they can. A Redis that refuses `CONFIG GET` (a managed service, a
    /// renamed command) cannot be checked, and says so.
    public func problems(of redis: RedisClient) async -> [String] {
        func setting(_ name: String) async -> String? {
            guard let reply = try? await redis.sendReturningErrors(RedisCommand(["CONFIG", "GET", name])),
                  let fields = reply.array, fields.count == 2 else { return nil }
            return fields[1].string
        }
        guard let appendonly = await setting("appendonly"), let fsync = await setting("appendfsync") else {
            return ["cannot read Redis' persistence settings (CONFIG GET is refused); make sure appendonly is yes and appendfsync is \(appendfsync) for --durability \(rawValue)"]
        }
        var problems: [String] = []
        if appendonly != "yes" {
            problems.append("Redis runs with appendonly \(appendonly): decisions acknowledged since the last snapshot are lost if Redis stops; --durability \(rawValue) needs appendonly yes")
        }
        switch (self, fsync) {
        case (.strict, let value) where value != "always":
            problems.append("Redis runs with appendfsync \(value): a crash of the machine can lose acknowledged decisions; --durability strict needs appendfsync always")
        case (.normal, "no"):
            problems.append("Redis runs with appendfsync no: a crash of the machine can lose more than the last second; --durability normal needs appendfsync everysec (or always)")
        default:
            break
        }
        return problems
    }
}
