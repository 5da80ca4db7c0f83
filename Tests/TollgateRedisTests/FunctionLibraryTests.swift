import Testing
import TollgateRedis
import TollgateTestSupport

@Suite("Redis Functions libraries")
struct FunctionLibraryTests {
    static func code(name: String = "tgtest", version: Int = 1) -> String {
        """
        #!lua name=\(name)
        redis.register_function('\(name)_echo', function(keys, args) return {\(version), args[1]} end)
        redis.register_function('\(name)_set', function(keys, args) return redis.call('SET', keys[1], args[1]) end)
        redis.register_function('\(name)_fail', function(keys, args) return redis.error_reply('TGFAIL ' .. args[1]) end)
        """
    }

    @Test("the name comes from the first line", arguments: [
        ("#!lua name=ledger\nreturn 1", "ledger"),
        ("#!lua name=ledger_v2 \nredis.register_function('f', function() return 1 end)", "ledger_v2"),
        ("#!lua name=a.b-c engine=whatever\n", "a.b-c"),
        ("#!lua name=solo", "solo"),
    ])
    func parsesName(_ code: String, _ name: String) throws {
        let library = try RedisFunctionLibrary(code: code)
        #expect(library.name == name)
        #expect(library.code == code)
    }

    @Test("code without '#!lua name=' on its first line is rejected", arguments: [
        "",
        "return 1",
        "#!lua\nredis.register_function('f', function() return 1 end)",
        "#!lua name=\nreturn 1",
        "#!python name=x\n",
        "\n#!lua name=late\n",
        "-- comment\n#!lua name=x\n",
    ])
    func rejectsCodeWithoutName(_ code: String) {
        #expect(throws: RedisError.self) { try RedisFunctionLibrary(code: code) }
    }

    @Test func installLoadsThenKeepsThenReplaces() async throws {
        let server = try await RedisServer()
        defer { server.stop() }
        let client = server.client()
        defer { client.close() }
        let first = try RedisFunctionLibrary(code: Self.code(version: 1))
        let second = try RedisFunctionLibrary(code: Self.code(version: 2))

        #expect(try await client.loadedCode(of: first) == nil)
        #expect(try await client.install(first) == .loaded)
        #expect(try await client.loadedCode(of: first) == first.code)
        #expect(try await client.install(first) == .alreadyCurrent)
        #expect(try await client.install(first) == .alreadyCurrent)
        #expect(try await client.send(.fcall("tgtest_echo", keys: [], arguments: ["hi"])) == .array([.integer(1), .bulkString(utf8("hi"))]))

        #expect(try await client.install(second) == .replaced)
        #expect(try await client.loadedCode(of: first) == second.code)
        #expect(try await client.install(second) == .alreadyCurrent)
        #expect(try await client.send(.fcall("tgtest_echo", keys: [], arguments: ["hi"])) == .array([.integer(2), .bulkString(utf8("hi"))]))

        // Going back is a replacement too.
        #expect(try await client.install(first) == .replaced)
        #expect(try await client.loadedCode(of: second) == first.code)
    }

    @Test func loadedCodeOnlyMatchesTheExactLibraryName() async throws {
        let server = try await RedisServer()
        defer { server.stop() }
        let client = server.client()
        defer { client.close() }
        let long = try RedisFunctionLibrary(code: Self.code(name: "tgtestlong"))
        let short = try RedisFunctionLibrary(code: Self.code(name: "tgtest"))
        #expect(try await client.install(long) == .loaded)
        #expect(try await client.loadedCode(of: short) == nil)
        #expect(try await client.install(short) == .loaded)
        #expect(try await client.loadedCode(of: short) == short.code)
        #expect(try await client.loadedCode(of: long) == long.code)
    }

    @Test func installRejectsBrokenCode() async throws {
        let server = try await RedisServer()
        defer { server.stop() }
        let client = server.client()
        defer { client.close() }
        let broken = try RedisFunctionLibrary(code: "#!lua name=broken\nthis is not lua")
        let error = await redisError { () async throws(RedisError) in try await client.install(broken) }
        #expect(error?.code == .serverError, "\(String(describing: error))")
        #expect(try await client.loadedCode(of: broken) == nil)
    }

    @Test func callReinstallsAfterFunctionFlush() async throws {
        let server = try await RedisServer()
        defer { server.stop() }
        let client = server.client()
        defer { client.close() }
        let library = try RedisFunctionLibrary(code: Self.code())
        let command = RedisCommand.fcall("tgtest_set", keys: ["k"], arguments: ["v1"])

        // Never installed: `call` loads it and retries.
        #expect(try await client.call(library, command) == .simpleString("OK"))
        #expect(try await client.loadedCode(of: library) == library.code)
        #expect(try await client.send("GET", "k") == .bulkString(utf8("v1")))

        try await client.send("FUNCTION", "FLUSH")
        #expect(try await client.loadedCode(of: library) == nil)
        let again = RedisCommand.fcall("tgtest_set", keys: ["k"], arguments: ["v2"])
        #expect(try await client.call(library, again) == .simpleString("OK"))
        #expect(try await client.send("GET", "k") == .bulkString(utf8("v2")))
        #expect(try await client.loadedCode(of: library) == library.code)
    }

    @Test func callReturnsTheFunctionsOwnErrorsWithoutReinstalling() async throws {
        let server = try await RedisServer()
        defer { server.stop() }
        let client = server.client()
        defer { client.close() }
        let installed = try RedisFunctionLibrary(code: Self.code(version: 1))
        let newer = try RedisFunctionLibrary(code: Self.code(version: 2))
        try await client.install(installed)

        // An error reply from the function itself comes back as a value, and since the library
        // was not lost, `call` does not install the (different) library it was given.
        let reply = try await client.call(newer, .fcall("tgtest_fail", keys: [], arguments: ["boom"]))
        #expect(reply == .error("TGFAIL boom"))
        #expect(try await client.loadedCode(of: installed) == installed.code)
    }

    @Test func callRetriesOnlyOnceWhenTheFunctionStaysMissing() async throws {
        let server = try await RedisServer()
        defer { server.stop() }
        let client = server.client()
        defer { client.close() }
        let library = try RedisFunctionLibrary(code: Self.code())
        // What Redis itself counted: FCALLs, and library loads, since the stats were reset.
        func counted(_ command: String) async throws -> Int {
            let info = try await client.send("INFO", "commandstats").string ?? ""
            guard let line = info.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("cmdstat_\(command):") }) else { return 0 }
            // Calls refused before running are counted apart from those that ran.
            return line.split(separator: ",").reduce(0) { sum, field in
                let pair = field.split(separator: "=")
                guard pair.count == 2, pair[0].hasSuffix("calls"), !pair[0].hasPrefix("failed") else { return sum }
                return sum + (Int(pair[1]) ?? 0)
            }
        }
        _ = try await client.send("CONFIG", "RESETSTAT")
        // The library does not define this function: `call` installs the library, retries once,
        // then hands back Redis' error.
        let reply = try await client.call(library, .fcall("tgtest_nosuch", keys: [], arguments: []))
        guard case .error(let message) = reply else {
            Issue.record("calling a missing function answered \(reply)")
            return
        }
        #expect(message.contains("Function not found"))
        #expect(try await counted("fcall") == 2, "the first call and exactly one retry")
        #expect(try await counted("function|load") == 1, "the library installed once")
        #expect(try await client.loadedCode(of: library) == library.code)
    }
}
