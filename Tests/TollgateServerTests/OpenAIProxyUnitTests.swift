import Foundation
import NIOCore
import Testing
@testable import TollgateServer

/// The proxy's pure parts, without sockets: reading requests, splitting SSE, the stream meter's
/// batches, estimates and the route table.
@Suite("OpenAI proxy: requests, SSE, batches, estimates")
struct OpenAIProxyUnitTests {
    static func call(_ json: String, _ endpoint: OpenAIEndpoint = .chatCompletions, defaultMax: Int64 = 100, imageTokens: Int64 = 1000) throws -> ProxiedCall {
        try ProxiedCall(endpoint: endpoint, body: Array(json.utf8), defaultMaxOutputTokens: defaultMax, imageTokens: imageTokens)
    }

    static func fields(_ call: ProxiedCall) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(call.upstreamBody)) as? [String: Any])
    }

    @Test("a stream asks the upstream for usage with exactly one stream_options, the client's object with include_usage: true, whatever the client wrote")
    func includeUsage() throws {
        let streams = [
            #"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}],"temperature":0.70}"#,
            #"{"model":"m","stream":true,"stream_options":null,"messages":[{"role":"user","content":"hi"}],"temperature":0.70}"#,
            #"{"model":"m","stream":true,"stream_options":{"include_usage":false,"x":1},"messages":[{"role":"user","content":"hi"}],"temperature":0.70}"#,
            #"{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}],"temperature":0.70}"#,
        ]
        for body in streams {
            let call = try Self.call(body)
            let text = String(decoding: call.upstreamBody, as: UTF8.self)
            #expect(text.components(separatedBy: "\"stream_options\"").count == 2, "\(body) -> \(text)")
            let forwarded = try Self.fields(call)
            let options = try #require(forwarded["stream_options"] as? [String: Any], "\(text)")
            #expect(options["include_usage"] as? Bool == true, "\(text)")
            #expect(forwarded["temperature"] as? Double == 0.7 && forwarded["model"] as? String == "m", "\(text)")
            #expect(call.clientWantsUsage == body.contains(#""include_usage":true"#))
        }
        #expect(try Self.fields(Self.call(streams[2]))["stream_options"].flatMap { ($0 as? [String: Any])?["x"] as? Int } == 1)
        // A key written twice reaches the upstream once, with the value metered here.
        let twice = try Self.call(#"{"model":"m","messages":[{"role":"user","content":"hi"}],"messages":[{"role":"user","content":"bye"}]}"#)
        #expect(String(decoding: twice.upstreamBody, as: UTF8.self).components(separatedBy: "\"messages\"").count == 2)
    }

    @Test("the estimate: input from the messages, output bounded by max_completion_tokens, max_tokens or the default, times n")
    func estimate() throws {
        let chat = try Self.call(#"{"model":"m","messages":[{"role":"user","content":"12345678"}],"max_tokens":50,"n":2}"#)
        // The UTF-8 bytes of every key and string: model, m, messages, role, user, content, the text, max_tokens, n.
        #expect(chat.estimatedInputTokens == 5 + 1 + 8 + 4 + 4 + 7 + 8 + 10 + 1)
        #expect(chat.maximumOutputTokens == 100)
        #expect(try Self.call(#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":50,"max_completion_tokens":7}"#).maximumOutputTokens == 50)
        #expect(try Self.call(#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#, defaultMax: 33).maximumOutputTokens == 33)
        let embedding = try Self.call(#"{"model":"e","input":["abcd","abcdefgh"]}"#, .embeddings)
        #expect(embedding.estimatedInputTokens == 5 + 1 + 5 + 4 + 8 && embedding.maximumOutputTokens == 0)
        #expect(embedding.estimate.map(\.meter) == [OpenAIMeters.input])
        // One token per id of a token array.
        #expect(try Self.call(#"{"model":"m","prompt":[1,2,3,4,5]}"#, .completions).estimatedInputTokens == 5 + 1 + 6 + 5)
    }

    @Test("the input estimate is an upper bound: UTF-8 bytes of all the request says (functions, response_format, tools too), an allowance per image instead of its URL")
    func inputEstimate() throws {
        let message = #"{"role":"user","content":"hi"}"#
        let plain = try Self.call(#"{"model":"m","messages":[\#(message)]}"#).estimatedInputTokens
        // Text in no Latin script: 3 bytes a character, and a BPE token may be one byte.
        let cjk = try Self.call(#"{"model":"m","messages":[{"role":"user","content":"漢字漢字"}]}"#).estimatedInputTokens
        #expect(cjk == plain - 2 + 12)
        let schema = String(repeating: "x", count: 400)
        for extra in [#""functions":[{"name":"f","description":"\#(schema)"}]"#,
                      #""response_format":{"type":"json_schema","json_schema":{"name":"\#(schema)"}}"#,
                      #""tools":[{"type":"function","function":{"name":"\#(schema)"}}]"#] {
            let call = try Self.call(#"{"model":"m","messages":[\#(message)],\#(extra)}"#)
            #expect(call.estimatedInputTokens >= plain + 400, "\(extra): \(call.estimatedInputTokens)")
        }
        let image = String(repeating: "A", count: 100_000)
        let withImage = try Self.call(#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"data:image/png;base64,\#(image)","detail":"high"}}]}]}"#,
                                      imageTokens: 777)
        #expect(withImage.estimatedInputTokens > 777 && withImage.estimatedInputTokens < 1000, "\(withImage.estimatedInputTokens)")
        // Text hidden beside an image's URL still counts.
        let hidden = try Self.call(#"{"model":"m","messages":[{"role":"user","type":"image_url","image_url":{"url":"u"},"content":"\#(schema)"}]}"#)
        #expect(hidden.estimatedInputTokens >= 400 + 1000)
    }

    @Test("the upstream is bound by what the hold covers: the default bound is sent, the larger of two is held, best_of and lists of prompts multiply it")
    func outputBound() throws {
        let unbounded = try Self.call(#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#, defaultMax: 33)
        #expect(try unbounded.maximumOutputTokens == 33 && Self.fields(unbounded)["max_completion_tokens"] as? Int == 33)
        #expect(try Self.fields(unbounded)["max_tokens"] == nil)
        let both = try Self.call(#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_completion_tokens":1,"max_tokens":100000}"#)
        #expect(both.maximumOutputTokens == 100_000)
        #expect(try Self.fields(both)["max_completion_tokens"] as? Int == 1 && Self.fields(both)["max_tokens"] as? Int == 100_000)
        let onlyTokens = try Self.call(#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":9}"#)
        #expect(try onlyTokens.maximumOutputTokens == 9 && Self.fields(onlyTokens)["max_completion_tokens"] == nil)

        // Completions read only max_tokens: it is sent whenever the client did not give it.
        let completion = try Self.call(#"{"model":"m","prompt":"x","max_completion_tokens":7}"#, .completions)
        #expect(try completion.maximumOutputTokens == 7 && Self.fields(completion)["max_tokens"] as? Int == 7)
        #expect(try Self.fields(try Self.call(#"{"model":"m","prompt":"x"}"#, .completions, defaultMax: 12))["max_tokens"] as? Int == 12)
        let prompts = try Self.call(#"{"model":"m","prompt":["a","b","c"],"max_tokens":10,"n":2,"best_of":3}"#, .completions)
        #expect(prompts.maximumOutputTokens == 10 * 3 * 3)
        #expect(try Self.call(#"{"model":"m","prompt":[[1,2],[3]],"max_tokens":10}"#, .completions).maximumOutputTokens == 20)
        #expect(try Self.call(#"{"model":"m","prompt":[1,2,3],"max_tokens":10,"n":4}"#, .completions).maximumOutputTokens == 40)
        // A chat call's prompt is its messages: one answer per choice.
        #expect(try Self.call(#"{"model":"m","messages":[{"role":"user","content":"x"},{"role":"user","content":"y"}],"max_tokens":10}"#).maximumOutputTokens == 10)
    }

    @Test("hostile requests are refused with a reason", arguments: [
        "", "null", "[]", "{}", #"{"model":""}"#, #"{"model":7,"messages":[{}]}"#, #"{"model":"a b","messages":[{}]}"#,
        #"{"model":"m","messages":[]}"#, #"{"model":"m","messages":"hi"}"#, #"{"model":"m","messages":[{}],"max_tokens":0}"#,
        #"{"model":"m","messages":[{}],"max_tokens":1.5}"#, #"{"model":"m","messages":[{}],"max_tokens":false}"#,
        #"{"model":"m","messages":[{}],"n":1000}"#, #"{"model":"m","messages":[{}],"stream":1}"#,
        #"{"model":"m","messages":[{}],"stream_options":{"include_usage":true}}"#,
        #"{"model":"m","messages":[{}],"n":3,"best_of":2}"#, #"{"model":"m","messages":[{}],"best_of":129}"#,
        #"{"model":"m","messages":[{}],"max_tokens":10000000,"n":128}"#,
    ])
    func hostile(_ body: String) {
        #expect(throws: APIError.self) { try Self.call(body) }
    }

    @Test("hostile completions are refused: no prompts, more output than any hold", arguments: [
        #"{"model":"m","prompt":[]}"#, #"{"model":"m","prompt":["a","b"],"max_tokens":10000000,"n":10}"#,
        #"{"model":"m","prompt":{"a":1}}"#,
    ])
    func hostileCompletion(_ body: String) {
        #expect(throws: APIError.self) { try Self.call(body, .completions) }
    }

    @Test("SSE events come out as soon as their blank line is in, however the bytes are cut, byte for byte")
    func sseSplitting() throws {
        let stream = "data: {\"a\":1}\n\n: comment\n\ndata: x\r\ndata: y\r\n\r\nevent: e\ndata:[DONE]\n\n"
        let bytes = Array(stream.utf8)
        for cut in 0...bytes.count {
            var reader = SSEEventReader()
            let first = reader.read(ByteBuffer(bytes: bytes[..<cut]))
            let second = reader.read(ByteBuffer(bytes: bytes[cut...]))
            let events = (first ?? []) + (second ?? [])
            #expect(first != nil && second != nil)
            #expect(events.map(\.data) == ["{\"a\":1}", nil, "x\ny", "[DONE]"], "cut at \(cut)")
            #expect(events.flatMap(\.raw) == bytes, "cut at \(cut)")
            #expect(events.last?.isDone == true && !reader.hasPartialEvent)
        }
        var reader = SSEEventReader()
        #expect(reader.read(ByteBuffer(bytes: Array(repeating: UInt8(ascii: "a"), count: SSEEventReader.maximumEventSize + 1))) == nil)
    }

    static func chunk(_ content: String) -> SSEEvent {
        let data = #"{"choices":[{"index":0,"delta":{"content":"\#(content)"}}]}"#
        return SSEEvent(raw: Array("data: \(data)\n\n".utf8), data: data)
    }

    @Test("batches: every N tokens, or T after the last report with tokens waiting; the usage chunk makes the count exact but is no batch")
    func batches() {
        let start = ContinuousClock.now
        var meter = StreamMeter(batchTokens: 3, batchInterval: .seconds(10), clientWantsUsage: false, start: start)
        #expect(meter.receive(Self.chunk("abcd"), at: start).batch == nil)
        #expect(meter.receive(Self.chunk("abcd"), at: start).batch == nil)
        #expect(meter.receive(Self.chunk("abcd"), at: start).batch == 3)
        meter.reported(3, at: start)
        #expect(meter.receive(Self.chunk("abcd"), at: start + .seconds(1)).batch == nil)
        // The interval passed since the last report: the one token waiting goes.
        #expect(meter.receive(Self.chunk("abcd"), at: start + .seconds(11)).batch == 2)
        meter.reported(2, at: start + .seconds(11))
        let usageData = #"{"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":12}}"#
        let usage = meter.receive(SSEEvent(raw: [], data: usageData), at: start + .seconds(12))
        #expect(!usage.relay, "the client did not ask for the usage chunk")
        // The exact count is the settle's to charge: the answer is complete.
        #expect(usage.batch == nil && meter.usage == UpstreamUsage(inputTokens: 9, outputTokens: 12) && meter.outputTokens == 12)
        #expect(meter.receive(SSEEvent(raw: [], data: "[DONE]"), at: start).done)
        let failure = meter.receive(SSEEvent(raw: [], data: #"{"error":{"message":"x"}}"#), at: start)
        #expect(failure.upstreamError && !failure.relay, "the upstream's error event is told in the proxy's words, not relayed")
        #expect(meter.receive(SSEEvent(raw: [], data: "not json"), at: start) == StreamMeter.Step())
    }

    @Test("the route table: exact names and prefixes in order, the default for the rest; bad tables refused")
    func routeTable() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tg-routes-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try "sk-llama\n".write(to: directory.appendingPathComponent("llama.key"), atomically: true, encoding: .utf8)
        let settings = #"{"routes":[{"models":["gpt-4o"],"url":"http://a:1/v1/"},{"models":["llama-*"],"url":"http://b:2/v1","key_file":"llama.key"}]}"#
        let routes = try OpenAIUpstreamTable.routes(settings: Data(settings.utf8), directory: directory)
        let table = OpenAIUpstreamTable(defaultUpstream: try OpenAIUpstream(baseURL: "http://c:3/v1", apiKey: "sk-c"), routes: routes)
        #expect(table.upstream(for: "gpt-4o").baseURL == "http://a:1/v1" && table.upstream(for: "gpt-4o").apiKey == nil)
        #expect(table.upstream(for: "llama-3-8b").apiKey == "sk-llama")
        #expect(table.upstream(for: "gpt-4o-mini").baseURL == "http://c:3/v1")
        for bad in ["[]", #"{"routes":[{"models":[],"url":"http://a/v1"}]}"#, #"{"routes":[{"models":["x"],"url":"ftp://a"}]}"#,
                    #"{"routes":[{"models":["x"],"url":"http://a","extra":1}]}"#, #"{"routes":[{"models":["*"],"url":"http://a"}]}"#,
                    #"{"routes":[{"models":["x"],"url":"http://a","key_file":"missing.key"}]}"#] {
            #expect(throws: (any Error).self, "\(bad)") { try OpenAIUpstreamTable.routes(settings: Data(bad.utf8), directory: directory) }
        }
    }
}
