import Foundation
import Hummingbird
import TollgateCore

/// Ids taken from URL paths: percent-decoded, and refused with 400 when they hold control
/// characters or are not valid ids.
enum PathParameter {
    static func text(_ context: some RequestContext, _ name: String) throws -> String {
        let raw = try context.parameters.require(name)
        guard let decoded = raw.removingPercentEncoding else {
            throw APIError.badRequest("the \(name) in the path is not valid percent-encoding")
        }
        guard !decoded.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw APIError.badRequest("the \(name) in the path has control characters")
        }
        return decoded
    }

    static func account(_ context: some RequestContext, _ name: String = "id") throws -> AccountID {
        let raw = try text(context, name)
        do { return try AccountID(raw) } catch { throw APIError(error) }
    }

    static func hold(_ context: some RequestContext) throws -> HoldID {
        let raw = try text(context, "hold_id")
        do { return try HoldID(parsing: raw) } catch { throw APIError(error) }
    }

    static func key(_ context: some RequestContext) throws -> KeyID {
        let raw = try text(context, "key_id")
        do { return try KeyID(raw) } catch { throw APIError(error) }
    }
}

/// Runs engine calls, turning their errors into API errors.
func engineCall<T>(_ body: () async throws(TollgateError) -> T) async throws -> T {
    do {
        return try await body()
    } catch {
        throw APIError(error)
    }
}
