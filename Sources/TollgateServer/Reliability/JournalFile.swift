import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A local append-only file of JSON lines (mode 600): what a journal must not lose if
/// `tollgate serve` crashes. A line is appended with one `write` before the caller answers; the
/// whole file is replaced (temporary file, then `rename`) when entries are done with.
struct JournalFile<Entry: Codable>: Sendable {
    let path: String

    /// Creates the file's folder if needed.
    init(path: String) throws {
        self.path = path
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    }

    /// The entries in the file, in order.
    func read() -> [Entry] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        let decoder = JSONDecoder()
        var entries: [Entry] = []
        for line in data.split(separator: UInt8(ascii: "\n")) where !line.isEmpty {
            // A line cut short by a crash mid-write is the only kind that can fail; skip it.
            if let entry = try? decoder.decode(Entry.self, from: Data(line)) { entries.append(entry) }
        }
        return entries
    }

    /// Appends one entry; false when it cannot be written.
    func append(_ entry: Entry) -> Bool {
        guard var line = try? JSONEncoder().encode(entry) else { return false }
        line.append(UInt8(ascii: "\n"))
        let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        return line.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(descriptor, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 { if errno == EINTR { continue }; return false }
                offset += n
            }
            return true
        }
    }

    /// Replaces the file with `entries`.
    @discardableResult
    func rewrite(_ entries: [Entry]) -> Bool {
        let encoder = JSONEncoder()
        var data = Data()
        for entry in entries {
            guard let line = try? encoder.encode(entry) else { continue }
            data.append(line)
            data.append(UInt8(ascii: "\n"))
        }
        let temporary = path + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: data, attributes: [.posixPermissions: 0o600]) else { return false }
        return rename(temporary, path) == 0
    }
}
