import Testing
@testable import TollgatePayments

@Suite("JSON reading for signature checks")
struct JSONDocumentTests {
    @Test("numbers keep their literal text; members keep order and raw text")
    func rawText() throws {
        let value = try #require(JSONValue.parse(bytes(#"{ "b" : 0.1819 , "a":[1, {"x":null}],"c":"\u00e9\n" }"#)))
        guard case .object(let members) = value else {
            Issue.record("not an object")
            return
        }
        #expect(members.map(\.name) == ["b", "a", "c"])
        #expect(members[0].value == .number("0.1819"))
        #expect(members[1].rawValue == #"[1, {"x":null}]"#)
        #expect(members[2].value == .string("é\n"))
        #expect(members[2].rawValue == #""\u00e9\n""#)
    }

    @Test("surrogate pairs decode; lone surrogates do not")
    func surrogates() {
        #expect(JSONValue.parse(bytes(#""\ud83d\ude00""#)) == .string("😀"))
        #expect(JSONValue.parse(bytes(#""\ud83d""#)) == nil)
    }

    @Test("invalid documents are refused", arguments: [
        "", " ", "{", "}", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "[1,]", "01", "1.", ".1", "-", "1e", "+1", "NaN", "tru",
        "\"\u{01}\"", "\"\\x\"", "{\"a\":1}{}", "{'a':1}", "{\"a\":1,\"a\":1}", String(repeating: "[", count: 65) + String(repeating: "]", count: 65),
    ])
    func invalid(text: String) {
        #expect(JSONValue.parse(bytes(text)) == nil)
    }

    @Test("invalid UTF-8 inside a string is refused")
    func invalidUTF8() {
        #expect(JSONValue.parse([0x22, 0xFF, 0x22]) == nil)
        #expect(JSONValue.parse([0x22, 0xC3, 0xA9, 0x22]) == .string("é"))
    }
}
