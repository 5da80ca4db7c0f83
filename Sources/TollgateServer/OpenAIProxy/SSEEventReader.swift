import NIOCore

/// One server-sent event as the upstream wrote it: its bytes, blank line included, to relay
/// unchanged, and its `data` (the lines joined by newlines), to read.
struct SSEEvent: Sendable, Equatable {
    let raw: [UInt8]
    let data: String?

    /// Whether this is the stream's end marker, `data: [DONE]`.
    var isDone: Bool { data == "[DONE]" }
}

/// Splits an upstream's `text/event-stream` into events as its bytes arrive, however they are
/// cut: an event is handed on as soon as its blank line is in, never later.
struct SSEEventReader: Sendable {
    /// The most bytes one event may have; an upstream writing more is broken.
    static let maximumEventSize = 4 * 1024 * 1024

    private var pending: [UInt8] = []
    /// Where in `pending` the line being read starts.
    private var lineStart = 0
    private var dataLines: [String] = []
    private var sawData = false

    /// The events completed by `bytes`; nil when an event grows beyond `maximumEventSize`.
    mutating func read(_ bytes: ByteBuffer) -> [SSEEvent]? {
        var events: [SSEEvent] = []
        for byte in bytes.readableBytesView {
            pending.append(byte)
            guard byte == UInt8(ascii: "\n") else { continue }
            var line = pending[lineStart..<(pending.count - 1)]
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            if line.isEmpty {
                if sawData || !pending.isEmpty {
                    events.append(SSEEvent(raw: pending, data: sawData ? dataLines.joined(separator: "\n") : nil))
                }
                pending.removeAll(keepingCapacity: true)
                dataLines.removeAll(keepingCapacity: true)
                sawData = false
                lineStart = 0
                continue
            }
            if line.starts(with: Self.dataPrefix) {
                var value = line.dropFirst(Self.dataPrefix.count)
                if value.first == UInt8(ascii: " ") { value = value.dropFirst() }
                dataLines.append(String(decoding: value, as: UTF8.self))
                sawData = true
            }
            lineStart = pending.count
        }
        guard pending.count <= Self.maximumEventSize else { return nil }
        return events
    }

    /// Bytes of an event not yet ended by its blank line (an upstream that stopped mid-event).
    var hasPartialEvent: Bool { !pending.isEmpty }

    private static let dataPrefix = Array("data:".utf8)
}
