/// A Redis Functions library (`FUNCTION LOAD`), identified by its name and exact code.
public struct RedisFunctionLibrary: Sendable, Hashable {
    /// The name declared in the code's `#!lua name=...` line.
    public let name: String
    /// The library's source, byte for byte as it must run in Redis.
    public let code: String

    /// Takes the name from the code's first line (`#!lua name=NAME`).
    public init(code: String) throws(RedisError) {
        let firstLine = code.prefix { $0 != "\n" }
        guard firstLine.hasPrefix("#!lua"),
              let range = firstLine.range(of: "name=") else {
            throw RedisError(.unexpectedReply, "a function library must start with '#!lua name=NAME'")
        }
        let name = firstLine[range.upperBound...].prefix { $0 != " " }
        guard !name.isEmpty else { throw RedisError(.unexpectedReply, "the library has an empty name") }
        self.name = String(name)
        self.code = code
    }
}

/// What `RedisClient.install(_:)` found and did.
public enum RedisFunctionInstallOutcome: Sendable, Hashable {
    /// Redis already ran exactly this code.
    case alreadyCurrent
    /// The library was missing and has been loaded.
    case loaded
    /// Redis ran other code under this name; it has been replaced.
    case replaced
}

extension RedisClient {
    /// The code Redis runs under the library's name, or `nil` when none is loaded.
    /// On a cluster: the code if every primary runs the same, else the first that differs.
    public func loadedCode(of library: RedisFunctionLibrary) async throws(RedisError) -> String? {
        if let cluster {
            var codes: [String?] = []
            for (_, client) in try await cluster.primaryClients() { codes.append(try await client.loadedCode(of: library)) }
            return codes.first { $0 != library.code } ?? library.code
        }
        var command = RedisCommand("FUNCTION")
        command.append("LIST")
        command.append("LIBRARYNAME")
        command.append(library.name)
        command.append("WITHCODE")
        let reply = try await send(command)
        for entry in reply.array ?? [] {
            let fields = entry.array ?? []
            var name: String?
            var code: String?
            var index = 0
            while index + 1 < fields.count {
                switch fields[index].string {
                case "library_name": name = fields[index + 1].string
                case "library_code": code = fields[index + 1].string
                default: break
                }
                index += 2
            }
            if name == library.name { return code }
        }
        return nil
    }

    /// Makes Redis run exactly `library`: loads it when missing, replaces it when different.
    @discardableResult
    /// On a cluster, on every primary (replicas follow their primary); the outcome says
    /// `loaded`/`replaced` when any primary needed it.
    public func install(_ library: RedisFunctionLibrary) async throws(RedisError) -> RedisFunctionInstallOutcome {
        if let cluster {
            var outcome = RedisFunctionInstallOutcome.alreadyCurrent
            for (_, client) in try await cluster.primaryClients() {
                let one = try await client.install(library)
                if one == .replaced || (one == .loaded && outcome == .alreadyCurrent) { outcome = one }
            }
            return outcome
        }
        let current = try await loadedCode(of: library)
        if current == library.code { return .alreadyCurrent }
        var command = RedisCommand("FUNCTION")
        command.append("LOAD")
        command.append("REPLACE")
        command.append(library.code)
        _ = try await send(command)
        guard try await loadedCode(of: library) == library.code else {
            throw RedisError(.unexpectedReply, "Redis does not report the code just loaded for library '\(library.name)'")
        }
        return current == nil ? .loaded : .replaced
    }

    /// Calls a function of `library` (`FCALL`). When Redis has lost the library (a restart
    /// without persistence, `FUNCTION FLUSH`), it is loaded again and the call retried once.
    /// Error replies are returned as `.error` values for the caller to interpret.
    public func call(
        _ library: RedisFunctionLibrary,
        _ command: RedisCommand
    ) async throws(RedisError) -> RESPValue {
        let reply = try await sendReturningErrors(command)
        if case .error(let message) = reply, message.hasPrefix("ERR Function not found") {
            try await install(library)
            return try await sendReturningErrors(command)
        }
        return reply
    }
}
