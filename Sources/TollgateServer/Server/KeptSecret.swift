import Foundation

/// A secret given by the operator, or else generated once and kept in a file of the data
/// folder (mode 600) so that restarts, and CLI commands run beside the server, find it again.
public enum KeptSecret {
    /// Where the secret came from.
    public enum Origin: Sendable {
        case given, stored, generated
    }

    /// The secret: `given` when not empty, else the file's content, else a new one from
    /// `generate`, written to `file`.
    public static func load(given: String?, file: URL, generate: () -> String) throws -> (value: String, origin: Origin) {
        if let given, !given.isEmpty { return (given, .given) }
        if let kept = try? String(contentsOf: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines), !kept.isEmpty {
            return (kept, .stored)
        }
        let made = generate()
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: file.path, contents: Data((made + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
            throw ServeError("cannot write \(file.path)")
        }
        return (made, .generated)
    }
}
