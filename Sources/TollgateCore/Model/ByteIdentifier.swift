/// An identifier that is its bytes: equal, hashed and ordered by its UTF-8 bytes, never as
/// Unicode text. Redis keys are built from the bytes, so two ids that Swift's `String ==`
/// calls equal (canonically equivalent, like the Kelvin sign `\u{212A}` and `K`) are two
/// different accounts, keys or requests, and must stay two everywhere in Swift as well: in
/// access checks, caches, subscriptions and sorting.
public protocol ByteIdentifier: Hashable, Comparable {
    /// The identifier as given; only its bytes count.
    var rawValue: String { get }
}

extension ByteIdentifier {
    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.rawValue.utf8.elementsEqual(rhs.rawValue.utf8)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(rawValue.utf8.count)
        for byte in rawValue.utf8 { hasher.combine(byte) }
    }

    /// Byte order, as Redis sorts.
    public static func < (lhs: Self, rhs: Self) -> Bool {
        lhs.rawValue.utf8.lexicographicallyPrecedes(rhs.rawValue.utf8)
    }
}
