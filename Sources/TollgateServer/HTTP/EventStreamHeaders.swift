import HTTPTypes

/// The head of every `text/event-stream` answer (the live event streams, the OpenAI proxy's
/// streams): not cached, and not buffered by a proxy in front (nginx reads `X-Accel-Buffering`),
/// so each event reaches the client as it is written.
enum EventStreamHeaders {
    static let fields: HTTPFields = [
        .contentType: "text/event-stream", .cacheControl: "no-cache", HTTPField.Name("X-Accel-Buffering")!: "no",
    ]
}
