import TollgateRedis

/// Tollgate's Lua: the Redis Functions library assembled from `lua/` at build time.
public enum TollgateLua {
    /// The library exactly as in the repository's `lua/` folder.
    public static let library: RedisFunctionLibrary = {
        do {
            return try RedisFunctionLibrary(code: EmbeddedLua.library)
        } catch {
            preconditionFailure("lua/00_prelude.lua must start with '#!lua name=tollgate': \(error)")
        }
    }()

    /// What the library's `library_fingerprint` function answers: a hash of the whole library,
    /// so one small call tells whether Redis runs exactly this one.
    public static var fingerprint: String { EmbeddedLua.fingerprint }

    /// The `lua/` files the library was built from, in order.
    public static var files: [String] { EmbeddedLua.files }
}
