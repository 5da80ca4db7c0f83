import Foundation
import Testing
import TollgateTestSupport

/// Identifiers are their bytes. Redis keys are built from an account id's bytes, so two ids
/// that Unicode calls canonically equivalent (Swift's `String ==` does) are two accounts, and
/// a token for one must not open the other on any route or stream.
@Suite("identifiers compare by bytes")
struct IdentifierBytesTests {
    /// Pairs of ids that are canonically equivalent yet different bytes: the Kelvin sign and K,
    /// the Ångström sign and Å, a precomposed and a decomposed é, the Ohm sign and Ω.
    static let pairs: [(victim: String, attacker: String)] = [
        ("KEVIN", "\u{212A}EVIN"),
        ("\u{00C5}ngstr\u{00F6}m", "\u{212B}ngstr\u{00F6}m"),
        ("caf\u{00E9}", "cafe\u{0301}"),
        ("\u{03A9}mega", "\u{2126}mega"),
    ]

    @Test("a token for an id canonically equivalent to another is refused on every account route and stream of the other")
    func equivalentIDsAreStrangers() async throws {
        try await E2EServer.with { s in
            // Every route with an account in its path, as the API document lists them.
            let document = try await s.request("GET", "/openapi.json", token: nil).value
            let paths = try #require(document["paths"]?.object)
            let accountRoutes: [(method: String, template: String)] = paths.keys.sorted().filter { $0.hasPrefix("/v1/accounts/{id}") }
                .flatMap { path in (paths[path]?.object?.keys.sorted() ?? []).filter { $0 != "parameters" }.map { ($0.uppercased(), path) } }
            try #require(accountRoutes.count >= 20, "\(accountRoutes)")

            for (victim, attacker) in Self.pairs {
                #expect(victim == attacker, "the pair is canonically equivalent as Swift strings")
                #expect(Array(victim.utf8) != Array(attacker.utf8))
                try await s.account(victim, credit: "10")
                try await s.account(attacker, credit: "1")
                let victimToken = try await s.accountToken(for: victim)
                let attackerToken = try await s.accountToken(for: attacker)

                // Two accounts: each reads as itself.
                #expect(try await s.show(victim)["balance"] == "10")
                #expect(try await s.show(attacker)["balance"] == "1")
                let own = try await s.request("GET", "/v1/accounts/\(E2EPath.segment(attacker))", token: attackerToken)
                #expect(own.status == 200 && own.value["id"]?.string.map { Array($0.utf8) } == Array(attacker.utf8), "\(own)")

                let segment = E2EPath.segment(victim)
                for route in accountRoutes {
                    let path = route.template.replacingOccurrences(of: "{id}", with: segment)
                        .replacingOccurrences(of: "{token_id}", with: "tok_" + String(repeating: "0", count: 64))
                    if path.hasSuffix("/events") {
                        let stream = try SSEStreams(port: s.port, path: path, token: attackerToken)
                        try await waitForStatus(stream)
                        #expect(stream.status() == 403, "\(route.method) \(path) with the token of \(attacker.debugDescription)")
                        stream.close()
                        continue
                    }
                    let body: [String: Any]? = route.method == "GET" ? nil : [:]
                    let response = try await s.request(route.method, path, token: attackerToken, body)
                    #expect(response.status == 403 && response.errorCode == "forbidden",
                            "\(route.method) \(route.template) of \(victim.debugDescription) with the token of \(attacker.debugDescription): \(response.status) \(response.text.prefix(200))")
                }
                // The victim's own token still reads it, so the refusals above were about the token.
                let allowed = try await s.request("GET", "/v1/accounts/\(segment)/ledger", token: victimToken)
                #expect(allowed.status == 200, "\(allowed)")
                #expect(try await s.show(victim)["balance"] == "10")
            }
        }
    }

    @Test("an account's live stream carries only its own events, not those of an equivalent id")
    func streamsStayApart() async throws {
        try await E2EServer.with { s in
            let (victim, attacker) = Self.pairs[0]
            try await s.account(victim)
            try await s.account(attacker)
            let stream = try SSEStreams(port: s.port, path: "/v1/accounts/\(E2EPath.segment(victim))/events",
                                        token: try await s.accountToken(for: victim))
            defer { stream.close() }
            try await waitForStatus(stream)
            try #require(stream.status() == 200)
            // The attacker's credit first: had it reached the victim's stream, it would come first.
            for (id, amount) in [(attacker, "7"), (victim, "3")] {
                let credited = try await s.admin("POST", "/v1/accounts/\(E2EPath.segment(id))/credits",
                                                 ["amount": amount, "request_id": "credit-\(amount)"])
                try #require(credited.status == 200, "\(credited)")
            }
            try await stream.waitUntil { events in events.contains { $0.event == "change" } }
            // A moment for a wrongly routed second change to arrive too.
            try await Task.sleep(for: .milliseconds(300))
            let credits = stream.events().filter { $0.event == "change" }
            #expect(credits.count == 1 && credits.first?["amount"] == "3", "\(credits)")
            #expect(stream.events().allSatisfy { $0["account"].map { Array($0.utf8) == Array(victim.utf8) } ?? true }, "\(stream.events())")
        }
    }

    private func waitForStatus(_ stream: SSEStreams) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while stream.status() == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
    }
}
