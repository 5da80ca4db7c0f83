import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import TollgateCore

/// JSON in and out, strictly: bodies have a size limit, unknown fields are refused, and every
/// failure is a 4xx `APIError` that says what was wrong.
enum JSON {
    /// Request bodies larger than this get 413.
    static let maximumBodySize = 64 * 1024

    static func encode(_ value: some Encodable) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Every value the API encodes is made of strings, numbers, booleans and arrays.
        return (try? Array(encoder.encode(value))) ?? Array(#"{"error":{"code":"internal","message":"encoding failed"}}"#.utf8)
    }

    static func response(_ value: some Encodable, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: encode(value))))
    }

    /// Reads and decodes a body as `T`, refusing bodies over the limit, malformed JSON,
    /// wrong types and fields `T` does not know.
    static func decode<T: StrictDecodable>(_ type: T.Type, from request: Request) async throws -> T {
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: maximumBodySize)
        } catch {
            throw APIError(.contentTooLarge, "body_too_large", "the body is larger than \(maximumBodySize) bytes")
        }
        // No body at all reads as `{}`: routes whose fields are all optional (a hold's
        // release) need none, and the others then say which field is missing.
        let data = buffer.readableBytes == 0 ? Data("{}".utf8) : Data(buffer.readableBytesView)
        // One parse: the unknown-field check runs inside the decoding, on the same tree.
        do {
            return try JSONDecoder().decode(StrictBody<T>.self, from: data).value
        } catch let error as UnknownFields {
            throw APIError.badRequest("\(path(error.codingPath)): \(error.description)")
        } catch let error as DecodingError {
            throw APIError.badRequest(describe(error))
        }
    }

    private static func path(_ codingPath: [any CodingKey]) -> String {
        let joined = codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        return joined.isEmpty ? "the body" : "'\(joined)'"
    }

    private static func describe(_ error: DecodingError) -> String {
        switch error {
        case .keyNotFound(let key, let context):
            let parent = context.codingPath.isEmpty ? "" : " in \(path(context.codingPath))"
            return "missing field '\(key.stringValue)'\(parent)"
        case .typeMismatch(_, let context) where context.codingPath.isEmpty:
            return "the body must be a JSON object"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "\(path(context.codingPath)) has the wrong type: \(context.debugDescription)"
        case .dataCorrupted(let context) where context.codingPath.isEmpty:
            return "the body is not valid JSON"
        case .dataCorrupted(let context):
            return "\(path(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "the body does not match the expected shape"
        }
    }
}

/// Decodes `T` after refusing the fields it does not know, from the decoder's one parse.
private struct StrictBody<T: StrictDecodable>: Decodable {
    let value: T

    init(from decoder: any Decoder) throws {
        try refuseUnknownFields(decoder, T.fields.sorted())
        value = try T(from: decoder)
    }
}

/// A request body whose fields are known, so anything else can be refused.
protocol StrictDecodable: Decodable {
    static var fields: Set<String> { get }
}
