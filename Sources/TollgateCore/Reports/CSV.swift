/// RFC 4180 CSV lines: a field with a comma, quote or line break is quoted, quotes doubled.
public enum CSV {
    public static func line(_ fields: [String]) -> String {
        fields.map(escape).joined(separator: ",") + "\r\n"
    }

    /// Free text from callers (request ids, references): a leading `=`, `+`, `-` or `@` would
    /// be read as a formula by spreadsheets, so it is prefixed with `'`.
    public static func text(_ field: String) -> String {
        guard let first = field.first, "=+-@".contains(first) else { return field }
        return "'" + field
    }

    static func escape(_ field: String) -> String {
        guard field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return field }
        return "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
