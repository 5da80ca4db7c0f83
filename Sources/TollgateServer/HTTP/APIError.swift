import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import TollgateCore

/// An error as the API returns it: `{"error": {"code": "...", "message": "..."}}` with a status.
public struct APIError: HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var code: String
    public var message: String
    public var headers: HTTPFields

    public init(_ status: HTTPResponse.Status, _ code: String, _ message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    /// The JSON body, also for answers written below the router (408 `request_timeout`).
    var body: [UInt8] { JSON.encode(ErrorBody(error: .init(code: code, message: message))) }

    private struct ErrorBody: Encodable {
        struct Detail: Encodable {
            let code: String
            let message: String
        }
        let error: Detail
    }

    static func badRequest(_ message: String) -> APIError { APIError(.badRequest, "invalid_request", message) }
    static let unauthorized = APIError(.unauthorized, "unauthorized", "a valid bearer token is required",
                                       headers: [.wwwAuthenticate: "Bearer"])
    static let forbidden = APIError(.forbidden, "forbidden", "this token may not use this route")
    static func notFound(_ message: String) -> APIError { APIError(.notFound, "not_found", message) }
}

extension APIError {
    /// The HTTP face of an engine error.
    init(_ error: TollgateError) {
        let status: HTTPResponse.Status
        switch error.code {
        case .invalidAmount, .invalidArgument, .amountOutOfRange: status = .badRequest
        case .accountNotFound, .keyNotFound, .depositNotFound, .tokenNotFound: status = .notFound
        case .accountExists, .idempotencyConflict, .accountClosed, .depositExists, .archiveMismatch, .rangeArchived: status = .conflict
        case .tooManyDeposits: status = .tooManyRequests
        case .redisUnavailable:
            // Redis did not answer in time: the decision fails closed, and was not charged
            // (the engine voids it). The gateway may retry with a new request id.
            self.init(.serviceUnavailable, "engine_unavailable", error.message, headers: [.retryAfter: "1"])
            return
        default: status = .internalServerError
        }
        self.init(status, error.code.rawValue, error.message)
    }
}
