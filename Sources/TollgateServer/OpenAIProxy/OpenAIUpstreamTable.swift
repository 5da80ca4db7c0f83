import Foundation
import TollgateCore

/// An OpenAI-compatible API the proxy forwards to: its base URL (what an SDK's `base_url`
/// would be, e.g. `https://api.openai.com/v1`) and the key it is called with.
public struct OpenAIUpstream: Sendable, Hashable {
    /// The base URL without a trailing slash; a route's path (`/chat/completions`) is appended.
    public let baseURL: String
    /// Sent as `Authorization: Bearer KEY`; nil sends no `Authorization` (a local server).
    public let apiKey: String?

    /// Checks that `baseURL` is an http(s) URL with a host.
    public init(baseURL: String, apiKey: String?) throws(TollgateError) {
        var trimmed = baseURL
        while trimmed.hasSuffix("/") { trimmed.removeLast() }
        guard let url = URL(string: trimmed), ["http", "https"].contains(url.scheme?.lowercased() ?? ""),
              url.host?.isEmpty == false, url.query == nil, url.fragment == nil else {
            throw TollgateError(.invalidArgument, "an OpenAI upstream is an http(s) base URL like http://127.0.0.1:8000/v1, not '\(baseURL.prefix(200))'")
        }
        guard apiKey.map({ !$0.isEmpty && !$0.contains(where: \.isNewline) }) ?? true else {
            throw TollgateError(.invalidArgument, "an upstream API key is one line of text")
        }
        self.baseURL = trimmed
        self.apiKey = apiKey
    }

    /// The URL of `path` (which starts with `/`) on this upstream.
    func url(_ path: String) -> String { baseURL + path }
}

/// Which upstream serves a model: the first route whose pattern matches (an exact name, or a
/// prefix ending in `*`), else the default upstream.
public struct OpenAIUpstreamTable: Sendable {
    /// One route: the model patterns it serves and where they go.
    public struct Route: Sendable, Hashable {
        public let models: [String]
        public let upstream: OpenAIUpstream

        func matches(_ model: String) -> Bool {
            models.contains { pattern in
                pattern.hasSuffix("*") ? model.hasPrefix(pattern.dropLast()) : model == pattern
            }
        }
    }

    /// Where models no route names go, and where `GET /models` is asked.
    public let defaultUpstream: OpenAIUpstream
    /// Tried in order before the default.
    public let routes: [Route]

    public init(defaultUpstream: OpenAIUpstream, routes: [Route] = []) {
        self.defaultUpstream = defaultUpstream
        self.routes = routes
    }

    /// The upstream for `model`.
    func upstream(for model: String) -> OpenAIUpstream {
        routes.first { $0.matches(model) }?.upstream ?? defaultUpstream
    }

    /// Reads a route table (`--openai-routes FILE`): JSON such as
    /// `{"routes": [{"models": ["gpt-4o", "llama-*"], "url": "http://10.0.0.5:8000/v1", "key_file": "/etc/tollgate/llama.key"}]}`.
    /// `key_file` (one line, read now) is optional; relative paths are taken from `directory`.
    public static func routes(settings data: Data, directory: URL) throws(TollgateError) -> [Route] {
        guard let document = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              Set(document.keys) == ["routes"], let entries = document["routes"] as? [[String: Any]] else {
            throw TollgateError(.invalidArgument, #"the route table is a JSON object {"routes": [{"models": [...], "url": "...", "key_file": "..."}]}"#)
        }
        var routes: [Route] = []
        for (index, entry) in entries.enumerated() {
            let unknown = Set(entry.keys).subtracting(["models", "url", "key_file"])
            guard unknown.isEmpty else {
                throw TollgateError(.invalidArgument, "route \(index + 1): unknown field(s) \(unknown.sorted().joined(separator: ", "))")
            }
            guard let models = entry["models"] as? [String], !models.isEmpty,
                  models.allSatisfy({ !$0.isEmpty && $0 != "*" && !$0.dropLast().contains("*") }) else {
                throw TollgateError(.invalidArgument, "route \(index + 1): 'models' is a list of model names or prefixes ending in *")
            }
            guard let url = entry["url"] as? String else {
                throw TollgateError(.invalidArgument, "route \(index + 1): 'url' is the upstream's base URL")
            }
            var key: String?
            if let keyFile = entry["key_file"] {
                guard let path = keyFile as? String else { throw TollgateError(.invalidArgument, "route \(index + 1): 'key_file' is a path") }
                key = try readKey(URL(fileURLWithPath: path, isDirectory: false,
                                      relativeTo: URL(fileURLWithPath: directory.path, isDirectory: true)))
            }
            routes.append(Route(models: models, upstream: try OpenAIUpstream(baseURL: url, apiKey: key)))
        }
        return routes
    }

    /// An API key kept in a file: its first line, without surrounding white space.
    public static func readKey(_ file: URL) throws(TollgateError) -> String {
        guard let text = try? String(contentsOf: file, encoding: .utf8),
              let line = text.split(whereSeparator: \.isNewline).first?.trimmingCharacters(in: .whitespaces), !line.isEmpty else {
            throw TollgateError(.invalidArgument, "cannot read an API key from \(file.path)")
        }
        return line
    }
}
