import Testing
@testable import TollgateCore

@Suite("Ids and keys")
struct IdentifierTests {
    static let oddIDs = ["demo", "a{b}c", "}{", "{a:x}", "with space", "new\nline", "naïve-ü-😀", "%41", "a/b?c#d", "\u{0}nul", "tg:{a:demo}:acct"]

    /// Redis Cluster's hash tag rule: the part between the first `{` and the next `}`, if non-empty.
    static func hashTag(_ key: String) -> String {
        let bytes = Array(key.utf8)
        guard let open = bytes.firstIndex(of: UInt8(ascii: "{")),
              let close = bytes[(open + 1)...].firstIndex(of: UInt8(ascii: "}")), close > open + 1 else { return key }
        return String(decoding: bytes[(open + 1)..<close], as: UTF8.self)
    }

    @Test("every key of an account shares one hash tag, for any bytes in the id (I7)", arguments: oddIDs)
    func oneSlotPerAccount(raw: String) throws {
        let id = try AccountID(raw)
        let keys = AccountKeys(id)
        let all = keys.forStep(try RequestID("req{}\n")) 
        let tags = Set(all.map(Self.hashTag))
        #expect(tags.count == 1)
        #expect(tags.first == "a:" + AccountKeys.encode(raw))
        #expect(AccountKeys.accountID(fromAccountKey: keys.account) == id)
    }

    @Test("distinct ids never share keys")
    func injective() throws {
        let ids = Self.oddIDs + ["%7B", "{", "%25", "%"]
        let encoded = Set(ids.map(AccountKeys.encode))
        #expect(encoded.count == Set(ids).count)
    }

    @Test("hold ids round-trip for any account id", arguments: oddIDs)
    func holdIDs(raw: String) throws {
        let hold = HoldID(account: try AccountID(raw), sequence: 42)
        let parsed = try HoldID(parsing: hold.description)
        #expect(parsed == hold)
        #expect(!hold.description.contains("/"))
    }

    @Test("malformed hold ids are refused", arguments: ["", "h", "h1", "h0.ZGVtbw", "x1.ZGVtbw", "h1.", "h1.@@", "h-1.ZGVtbw", "h1.ZGVtbx"])
    func badHoldIDs(text: String) {
        #expect(throws: TollgateError.self) { try HoldID(parsing: text) }
    }

    @Test("ids have length limits")
    func lengths() throws {
        #expect(throws: TollgateError.self) { try AccountID("") }
        #expect(throws: TollgateError.self) { try AccountID(String(repeating: "a", count: 257)) }
        _ = try AccountID(String(repeating: "a", count: 256))
        #expect(throws: TollgateError.self) { try RequestID("") }
        #expect(throws: TollgateError.self) { try RequestID(String(repeating: "r", count: 257)) }
    }
}

@Suite("API key secrets")
struct SecretHashTests {
    @Test("the stored hash is the lowercase hex SHA-256 of the secret (as sha256sum prints it)")
    func sha256Hex() {
        #expect(APIKeySecret.hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(APIKeySecret.hash("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test("canonically equivalent ids are different ids: equality, hashing and order go by bytes",
          arguments: [("KEVIN", "\u{212A}EVIN"), ("caf\u{00E9}", "cafe\u{0301}"), ("\u{03A9}", "\u{2126}"), ("\u{00C5}", "A\u{030A}")])
    func byteIdentity(pair: (String, String)) throws {
        #expect(pair.0 == pair.1, "Swift strings call them equal")
        let (a, b) = (try AccountID(pair.0), try AccountID(pair.1))
        #expect(a != b && Set([a, b]).count == 2 && AccountKeys(a).account != AccountKeys(b).account)
        #expect(HoldID(account: a, sequence: 1) != HoldID(account: b, sequence: 1))
        #expect(try RequestID(pair.0) != RequestID(pair.1))
        #expect((a < b) == Array(pair.0.utf8).lexicographicallyPrecedes(Array(pair.1.utf8)) && (a < b) != (b < a))
        #expect(Array(CouponCode.normalize(pair.0).utf8) != Array(CouponCode.normalize(pair.1).utf8))
    }

    @Test("coupon codes fold ASCII only: no Unicode case mapping makes another input the same code")
    func couponFolding() {
        #expect(Array(CouponCode.normalize("tg-abcd efgh-2345").utf8) == Array("TGABCDEFGH2345".utf8))
        // Unicode upper-casing maps the ligature ﬀ to FF and ß to SS; a code never holds them.
        #expect(Array(CouponCode.normalize("TG-\u{FB00}GH").utf8) != Array("TGFFGH".utf8))
        #expect(Array(CouponCode.normalize("TG-\u{00DF}").utf8) != Array("TGSS".utf8))
    }
}
