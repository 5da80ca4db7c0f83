import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import TollgateCore

/// The web dashboard: static files built into the binary, so it works with no internet access.
/// `/` is the page; `/dashboard/{file}` its scripts and styles. The page signs in with a token
/// the user pastes and calls the JSON API and the event stream itself. Two small reads serve
/// it: `GET /v1/whoami` (any token) and `GET /v1/accounts` (admin: find accounts).
struct DashboardRoutes: Sendable {
    let engine: Engine

    /// The dashboard's files, read once.
    private static let files: [String: (type: String, bytes: [UInt8])] = {
        var files: [String: (String, [UInt8])] = [:]
        let types = ["html": "text/html; charset=utf-8", "js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8",
                     "svg": "image/svg+xml"]
        guard let folder = Bundle.module.url(forResource: "dashboard", withExtension: nil),
              let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else { return [:] }
        for name in names {
            guard let type = types[(name as NSString).pathExtension],
                  let data = FileManager.default.contents(atPath: folder.appendingPathComponent(name).path) else { continue }
            files[name] = (type, Array(data))
        }
        return files
    }()

    func register(on routes: RouteTable) {
        routes.get("/", .open) { _, _ in try Self.serve("index.html") }
        routes.get("/dashboard/:file", .open) { _, context in try Self.serve(try context.parameters.require("file")) }
        routes.get("/v1/whoami", .anyToken) { _, context in
            switch try context.requireCaller() {
            case .admin: return JSON.response(["role": "admin"])
            case .service: return JSON.response(["role": "service"])
            case .account(let id): return JSON.response(["role": "account", "account": id.rawValue])
            }
        }
        routes.get("/v1/accounts", .admin) { request, _ in
            let query = request.uri.queryParameters
            let prefix = query["prefix"].map(String.init) ?? ""
            var limit = 50
            if let text = query["limit"] {
                guard let parsed = Int(String(text)), (1...1000).contains(parsed) else {
                    throw APIError.badRequest("'limit' must be a number from 1 to 1000")
                }
                limit = parsed
            }
            let ids = try await engineCall { () async throws(TollgateError) in try await engine.accountIDs() }
            let wanted = ids.map(\.rawValue).filter { $0.hasPrefix(prefix) }.sorted().prefix(limit)
            var accounts: [AccountState] = []
            for raw in wanted {
                let id = try apiCall { () throws(TollgateError) in try AccountID(raw) }
                if let account = try? await engine.account(id) { accounts.append(account) }
            }
            return JSON.response(AccountListView(accounts: accounts))
        }
    }

    private static func serve(_ name: String) throws -> Response {
        guard let file = files[name] else { throw APIError.notFound("no such dashboard file") }
        return Response(status: .ok, headers: [
            .contentType: file.type, .cacheControl: "no-cache",
            .contentSecurityPolicy: "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'",
        ], body: .init(byteBuffer: ByteBuffer(bytes: file.bytes)))
    }
}

struct AccountListView: Encodable {
    let accounts: [AccountState]
}
