import Foundation
import TollgateCore

/// The admin and service tokens: given (flag or environment), or generated once and kept in
/// the data folder (mode 600) so restarts keep them.
public struct ServerTokens: Sendable {
    public var admin: String
    public var service: String
    /// Which tokens were generated or read from the data folder (to tell the operator).
    public var generated: [String]

    public static func load(admin: String?, service: String?, directory: URL) throws -> ServerTokens {
        var generated: [String] = []
        func token(_ given: String?, _ name: String, _ prefix: String) throws -> String {
            if let given, !given.isEmpty { return given }
            let file = directory.appendingPathComponent("\(name).token")
            if let stored = try? String(contentsOf: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines), !stored.isEmpty {
                generated.append(name)
                return stored
            }
            let made = prefix + randomToken()
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            guard FileManager.default.createFile(atPath: file.path, contents: Data((made + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
                throw ServeError("cannot write \(file.path)")
            }
            generated.append(name)
            return made
        }
        return ServerTokens(admin: try token(admin, "admin", "tgadm_"), service: try token(service, "service", "tgsvc_"), generated: generated)
    }

    private static func randomToken() -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789".utf8)
        var generator = SystemRandomNumberGenerator()
        return String(decoding: (0..<40).map { _ in alphabet.randomElement(using: &generator)! }, as: UTF8.self)
    }
}
