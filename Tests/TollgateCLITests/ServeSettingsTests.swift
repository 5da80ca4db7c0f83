import Foundation
import Testing
import TollgateTestSupport

@Suite("tollgate serve settings: one mechanism, the same names in --help and the README")
struct ServeSettingsTests {
    /// One setting as a listing shows it: flag, variable (with `=1` for a switch), default.
    struct Row: Hashable, CustomStringConvertible {
        let flag: String
        let variable: String
        let defaultValue: String
        var description: String { "--\(flag) \(variable) \(defaultValue)" }
    }

    /// The settings `serve --help` lists: each option's help ends in `(default D; VARIABLE).`
    /// or `(VARIABLE).`; `--help` and `--demo` are actions, not settings.
    static func helpRows(_ help: String) throws -> [Row] {
        var blocks: [(flag: String, text: String)] = []
        for line in help.split(separator: "\n", omittingEmptySubsequences: false) {
            if let match = line.firstMatch(of: /^  (?:-\w, )?--([a-z0-9-]+)(?: <[^>]+>)?(.*)$/) {
                blocks.append((String(match.1), String(match.2)))
            } else if line.hasPrefix("                          "), !blocks.isEmpty {
                blocks[blocks.count - 1].text += " " + line.trimmingCharacters(in: .whitespaces)
            }
        }
        return try blocks.filter { !["help", "demo"].contains($0.flag) }.map { block in
            let text = block.text.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            let match = try #require(text.firstMatch(of: /\((?:default ([^;]+); )?(TOLLGATE_[A-Z_]+)(=1)?\)\.$/),
                                     "--\(block.flag) does not name its variable: \(text)")
            return Row(flag: block.flag, variable: String(match.2) + (match.3.map(String.init) ?? ""),
                       defaultValue: match.1.map(String.init) ?? (match.3 == nil ? "—" : "off"))
        }
    }

    /// The rows of the README's settings table: `| `--flag` | `VARIABLE` | default |`.
    static func readmeRows() throws -> [Row] {
        let readme = try String(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("README.md"), encoding: .utf8)
        let section = try #require(readme.components(separatedBy: "### Settings\n").dropFirst().first, "README has no Settings section")
        return section.split(separator: "\n").prefix { !$0.hasPrefix("#") }.compactMap { line in
            line.firstMatch(of: /^\| `--([a-z0-9-]+)` \| `(TOLLGATE_[A-Z_]+(?:=1)?)` \| ([^|]+) \|$/).map {
                Row(flag: String($0.1), variable: String($0.2), defaultValue: $0.3.trimmingCharacters(in: .whitespaces))
            }
        }
    }

    @Test("serve --help and the README's table list the same settings: flags, variables and defaults")
    func helpAndReadmeAgree() async throws {
        let help = try await CommandRunner.run(CommandRunner.product("tollgate"), ["serve", "--help"])
        #expect(help.status == 0)
        let listed = try Self.helpRows(help.stdout)
        let documented = try Self.readmeRows()
        #expect(listed.count >= 30, "the help listing was not read: \(listed)")
        #expect(Set(listed).subtracting(documented).isEmpty, "in --help, not in the README: \(Set(listed).subtracting(documented))")
        #expect(Set(documented).subtracting(listed).isEmpty, "in the README, not in --help: \(Set(documented).subtracting(listed))")
        #expect(Set(listed.map(\.variable)).count == listed.count, "two flags share a variable")
    }

    @Test("a flag or variable that does not read stops serve before it starts (exit 2), naming it",
          arguments: [
            ([], ["TOLLGATE_PORT": "80a"], "TOLLGATE_PORT"),
            (["--port", "70000"], [:], "--port is a whole number, 0 to 65535"),
            ([], ["TOLLGATE_REDIS_TIMEOUT": "5"], "TOLLGATE_REDIS_TIMEOUT (like --redis-timeout) is a duration"),
            (["--redis-timeout", "2m"], [:], "--redis-timeout is a duration"),
            ([], ["TOLLGATE_DENY_STATUS": "500"], "402, 403 or 429"),
            ([], ["TOLLGATE_DURABILITY": "fast"], "normal or strict"),
            ([], ["TOLLGATE_FAIL_OPEN": "maybe"], "TOLLGATE_FAIL_OPEN"),
            ([], ["TOLLGATE_MAX_CONNECTIONS": "0"], "TOLLGATE_MAX_CONNECTIONS"),
            ([], ["TOLLGATE_LOG_LEVEL": "loud"], "TOLLGATE_LOG_LEVEL"),
            ([], ["TOLLGATE_EVENTS_BUFFER": "-1"], "TOLLGATE_EVENTS_BUFFER"),
            (["--events-max-streams", "40", "--events-max-streams-per-account", "50"], [:], "at most --events-max-streams"),
            (["--redis-cluster", "127.0.0.1:1"], [:], "not both"),
          ] as [([String], [String: String], String)])
    func badSettings(_ arguments: [String], _ environment: [String: String], _ message: String) async throws {
        // An unreachable Redis: were the settings not checked first, serve would fail later with exit 1.
        let result = try await CommandRunner.run(
            CommandRunner.product("tollgate"),
            ["serve", "--data-dir", ServerProcess.temporaryDirectory().path, "--redis", "redis://127.0.0.1:1"] + arguments,
            environment: environment)
        #expect(result.status == 2 && result.stderr.contains(message), "\(result.status) \(result.stderr)")
    }

    @Test("a flag wins over its variable, which is then not read at all")
    func flagWins() async throws {
        let result = try await CommandRunner.run(
            CommandRunner.product("tollgate"),
            ["serve", "--port", "0", "--redis-timeout", "20ms", "--data-dir", ServerProcess.temporaryDirectory().path,
             "--redis", "redis://127.0.0.1:1"],
            environment: ["TOLLGATE_PORT": "not-a-port", "TOLLGATE_REDIS_TIMEOUT": "never"])
        // Past the settings: it fails on the unreachable Redis instead.
        #expect(result.status == 1, "\(result.status) \(result.stderr)")
        #expect(!result.stderr.contains("TOLLGATE_PORT") && !result.stderr.contains("TOLLGATE_REDIS_TIMEOUT"), "\(result.stderr)")
    }
}
