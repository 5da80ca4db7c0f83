import Foundation

/// A small JSON-Schema validator for the subset the OpenAPI document uses: `type` (a name or
/// an array of names, `null` among them for nullable), `properties`, `required`, `items`,
/// `enum`, `additionalProperties` (false or a schema), `$ref` (a JSON pointer into the
/// document, such as `#/components/schemas/Decision`), `pattern`, `minimum`, `maximum`,
/// `minItems`. Annotations (`description`, `examples`, `default`, `format`, `title`) are
/// ignored; any other keyword is reported, so the document cannot use one this validator
/// would silently skip.
struct JSONSchemaValidator {
    /// The whole document, for `$ref`.
    let document: JSONValue

    static let checked: Set<String> = ["$ref", "type", "properties", "required", "items", "enum", "additionalProperties",
                                       "pattern", "minimum", "maximum", "minItems"]
    static let annotations: Set<String> = ["description", "examples", "default", "format", "title"]

    /// Resolves a local reference (`#/a/b`), with `~1` and `~0` unescaped.
    func resolve(_ reference: String) -> JSONValue? {
        guard reference.hasPrefix("#/") else { return nil }
        var node = document
        for token in reference.dropFirst(2).split(separator: "/", omittingEmptySubsequences: false) {
            let key = token.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
            guard let next = node[key] else { return nil }
            node = next
        }
        return node
    }

    /// Follows `$ref` until a schema without one.
    func dereference(_ schema: JSONValue) -> JSONValue? {
        var current = schema
        var seen: Set<String> = []
        while let reference = current["$ref"]?.string {
            guard !seen.contains(reference), let target = resolve(reference) else { return nil }
            seen.insert(reference)
            current = target
        }
        return current
    }

    /// Every way `value` fails `schema`, each with the path where it does; empty when it is valid.
    func errors(_ value: JSONValue, _ schema: JSONValue, at path: String = "$") -> [String] {
        guard case .object(let keywords) = schema else { return ["\(path): the schema is not an object: \(schema)"] }
        var problems: [String] = []
        for keyword in keywords.keys where !Self.checked.contains(keyword) && !Self.annotations.contains(keyword) {
            problems.append("\(path): unsupported schema keyword '\(keyword)'")
        }
        if let reference = keywords["$ref"] {
            guard let name = reference.string, let target = resolve(name) else {
                return problems + ["\(path): unresolved $ref \(reference)"]
            }
            problems += errors(value, target, at: path)
        }
        if let type = keywords["type"] {
            let allowed = Set(type.array?.compactMap(\.string) ?? type.string.map { [$0] } ?? [])
            if allowed.isDisjoint(with: value.schemaTypes) {
                // A type mismatch makes the other keywords meaningless.
                return problems + ["\(path): \(value) is not of type \(allowed.sorted().joined(separator: " or "))"]
            }
        }
        if let options = keywords["enum"]?.array, !options.contains(value) {
            problems.append("\(path): \(value) is not one of \(options)")
        }
        if case .string(let text) = value, let pattern = keywords["pattern"]?.string {
            if text.range(of: pattern, options: .regularExpression) == nil {
                problems.append("\(path): \"\(text)\" does not match /\(pattern)/")
            }
        }
        if let number = value.number {
            if let minimum = keywords["minimum"]?.number, number < minimum { problems.append("\(path): \(value) is below \(minimum)") }
            if let maximum = keywords["maximum"]?.number, number > maximum { problems.append("\(path): \(value) is above \(maximum)") }
        }
        if case .array(let items) = value {
            if let minItems = keywords["minItems"]?.int, items.count < minItems {
                problems.append("\(path): \(items.count) items, fewer than \(minItems)")
            }
            if let itemSchema = keywords["items"] {
                for (index, item) in items.enumerated() { problems += errors(item, itemSchema, at: "\(path)[\(index)]") }
            }
        }
        if case .object(let fields) = value {
            let properties = keywords["properties"]?.object ?? [:]
            for name in keywords["required"]?.array?.compactMap(\.string) ?? [] where fields[name] == nil {
                problems.append("\(path): missing required field '\(name)'")
            }
            for (name, field) in fields.sorted(by: { $0.key < $1.key }) {
                if let propertySchema = properties[name] {
                    problems += errors(field, propertySchema, at: "\(path).\(name)")
                } else if let additional = keywords["additionalProperties"] {
                    if additional == false {
                        problems.append("\(path): field '\(name)' is not in the schema (additionalProperties: false)")
                    } else if additional != true {
                        problems += errors(field, additional, at: "\(path).\(name)")
                    }
                }
            }
        }
        return problems
    }

    /// Every schema keyword anywhere under `node` that this validator does not know, and every
    /// `$ref` that does not resolve: a check of the document itself.
    func documentProblems(_ node: JSONValue, at path: String = "#") -> [String] {
        var problems: [String] = []
        switch node {
        case .object(let fields):
            if let reference = fields["$ref"]?.string, resolve(reference) == nil {
                problems.append("\(path): unresolved $ref \(reference)")
            }
            for (key, child) in fields.sorted(by: { $0.key < $1.key }) {
                problems += documentProblems(child, at: "\(path)/\(key)")
            }
        case .array(let items):
            for (index, item) in items.enumerated() { problems += documentProblems(item, at: "\(path)/\(index)") }
        default:
            break
        }
        return problems
    }

    /// Checks that `schema` (and every schema it contains) uses only known keywords.
    func schemaProblems(_ schema: JSONValue, at path: String) -> [String] {
        guard case .object(let keywords) = schema else { return ["\(path): not a schema"] }
        var problems: [String] = []
        for keyword in keywords.keys where !Self.checked.contains(keyword) && !Self.annotations.contains(keyword) {
            problems.append("\(path): unsupported schema keyword '\(keyword)'")
        }
        for (name, property) in keywords["properties"]?.object ?? [:] {
            problems += schemaProblems(property, at: "\(path)/properties/\(name)")
        }
        if let items = keywords["items"] { problems += schemaProblems(items, at: "\(path)/items") }
        if let additional = keywords["additionalProperties"], additional.object != nil {
            problems += schemaProblems(additional, at: "\(path)/additionalProperties")
        }
        return problems
    }
}

extension JSONValue {
    /// The value as a number, for `minimum`/`maximum`.
    var number: Double? {
        switch self {
        case .int(let value): return Double(value)
        case .double(let value): return value
        default: return nil
        }
    }
}
