import ArgumentParser
import TollgateCore

/// One setting of `tollgate serve`: its flag, its `TOLLGATE_*` variable, its default, and how
/// its text is read and bounded. Every setting resolves the same way: the flag, else the
/// variable, else the default; a flag or variable that does not read is an error that names
/// it, never a silent fall back to the default.
///
/// The flag's help is made from the same declaration, so `--help`, the variable's name and
/// the default cannot drift apart.
struct Setting<Value: Sendable>: Sendable {
    /// The long flag without dashes, e.g. `redis-timeout`.
    let flag: String
    /// The environment variable, `TOLLGATE_` and the flag in capitals unless named otherwise.
    let variable: String
    let summary: String
    let discussion: String
    let valueName: String
    /// What a value must be, for errors: "a duration such as 250ms or 5s, 1ms to 1h".
    let expected: String
    let defaultValue: Value?
    /// The default as `--help` shows it; nil when there is none (or it is described in the summary).
    let defaultDescription: String?
    /// The value of a text, or nil when the text is not one (out of bounds included).
    let read: @Sendable (String) -> Value?

    init(_ flag: String, variable: String? = nil, _ summary: String, discussion: String = "", valueName: String,
         expected: String, default defaultValue: Value? = nil, defaultDescription: String? = nil,
         read: @escaping @Sendable (String) -> Value?) {
        self.flag = flag
        self.variable = variable ?? Self.variable(for: flag)
        self.summary = summary
        self.discussion = discussion
        self.valueName = valueName
        self.expected = expected
        self.defaultValue = defaultValue
        self.defaultDescription = defaultDescription
        self.read = read
    }

    static func variable(for flag: String) -> String {
        "TOLLGATE_" + flag.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    /// The flag's name for `@Option(name:)`.
    var name: NameSpecification { .customLong(flag) }

    /// The flag's help: the summary, then the default and the variable.
    var help: ArgumentHelp {
        let fallback = defaultDescription.map { "default \($0); " } ?? ""
        return ArgumentHelp("\(summary) (\(fallback)\(variable)).", discussion: discussion, valueName: valueName)
    }

    /// The flag's value, else the variable's, else the default.
    func value(_ flagText: String?, _ environment: [String: String]) throws(TollgateError) -> Value? {
        if let flagText {
            guard let value = read(flagText) else { throw SettingError.invalid("--\(flag)", flagText, expected) }
            return value
        }
        if let text = environment[variable] {
            guard let value = read(text) else { throw SettingError.invalid("\(variable) (like --\(flag))", text, expected) }
            return value
        }
        return defaultValue
    }

    /// The value, for a setting that has a default.
    func required(_ flagText: String?, _ environment: [String: String]) throws(TollgateError) -> Value {
        guard let value = try value(flagText, environment) else {
            throw TollgateError(.invalidArgument, "--\(flag) (or \(variable)) is required")
        }
        return value
    }
}

/// An on/off setting: the flag, or its variable set to 1, true or yes (0, false, no or empty is off).
struct Switch: Sendable {
    let flag: String
    let variable: String
    let summary: String

    init(_ flag: String, _ summary: String) {
        self.flag = flag
        self.variable = Setting<Bool>.variable(for: flag)
        self.summary = summary
    }

    var name: NameSpecification { .customLong(flag) }
    var help: ArgumentHelp { ArgumentHelp("\(summary) (\(variable)=1).") }

    func isOn(_ flagGiven: Bool, _ environment: [String: String]) throws(TollgateError) -> Bool {
        if flagGiven { return true }
        guard let text = environment[variable] else { return false }
        switch text.lowercased() {
        case "1", "true", "yes": return true
        case "0", "false", "no", "": return false
        default: throw SettingError.invalid(variable, text, "1, true or yes to turn it on; 0, false, no or empty to leave it off")
        }
    }
}

/// Why a setting was refused (exit 2, `invalid_argument`).
enum SettingError {
    static func invalid(_ source: String, _ text: String, _ expected: String) -> TollgateError {
        TollgateError(.invalidArgument, "\(source) is \(expected); got '\(text)'")
    }
}

extension Setting where Value == String {
    /// Any non-empty text.
    init(_ flag: String, variable: String? = nil, _ summary: String, discussion: String = "", valueName: String,
         default defaultValue: String? = nil) {
        self.init(flag, variable: variable, summary, discussion: discussion, valueName: valueName, expected: "not empty",
                  default: defaultValue, defaultDescription: defaultValue) { $0.isEmpty ? nil : $0 }
    }

    /// One of a few words.
    init(_ flag: String, _ summary: String, choices: [String], default defaultValue: String? = nil) {
        let listed = choices.count > 1 ? choices.dropLast().joined(separator: ", ") + " or " + choices.last! : choices.joined()
        self.init(flag, summary, valueName: choices.joined(separator: "|"), expected: listed, default: defaultValue,
                  defaultDescription: defaultValue) { choices.contains($0) ? $0 : nil }
    }
}

extension Setting where Value == Int {
    /// A whole number within `range`.
    init(_ flag: String, _ summary: String, discussion: String = "", valueName: String = "n", in range: ClosedRange<Int>,
         default defaultValue: Int? = nil) {
        self.init(flag, summary, discussion: discussion, valueName: valueName,
                  expected: "a whole number, \(range.lowerBound) to \(range.upperBound)",
                  default: defaultValue, defaultDescription: defaultValue.map(String.init)) { text in
            Int(text).flatMap { range.contains($0) ? $0 : nil }
        }
    }

    /// One of a few numbers.
    init(_ flag: String, _ summary: String, choices: [Int], default defaultValue: Int) {
        let words = choices.map(String.init)
        self.init(flag, summary, valueName: words.joined(separator: "|"),
                  expected: words.dropLast().joined(separator: ", ") + " or " + words.last!,
                  default: defaultValue, defaultDescription: String(defaultValue)) { text in
            Int(text).flatMap { choices.contains($0) ? $0 : nil }
        }
    }
}

extension Setting where Value == Int64 {
    /// A whole number within `range`.
    init(_ flag: String, _ summary: String, in range: ClosedRange<Int64>, default defaultValue: Int64) {
        self.init(flag, summary, valueName: "n", expected: "a whole number, \(range.lowerBound) to \(range.upperBound)",
                  default: defaultValue, defaultDescription: String(defaultValue)) { text in
            Int64(text).flatMap { range.contains($0) ? $0 : nil }
        }
    }
}

extension Setting where Value == Duration {
    /// A duration such as `250ms`, `30s`, `5m` or `1h`, within `range`.
    init(_ flag: String, _ summary: String, discussion: String = "", in range: ClosedRange<Duration>, default defaultValue: Duration) {
        let bounds = "\(DurationArgument(range.lowerBound).defaultValueDescription) to \(DurationArgument(range.upperBound).defaultValueDescription)"
        self.init(flag, summary, discussion: discussion, valueName: "duration",
                  expected: "a duration such as 250ms, 30s, 5m or 1h, \(bounds)",
                  default: defaultValue, defaultDescription: DurationArgument(defaultValue).defaultValueDescription) { text in
            DurationArgument(argument: text).flatMap { range.contains($0.duration) ? $0.duration : nil }
        }
    }
}
