import Foundation

/// SplitMix64: a small, seedable generator, so a randomized test's cases can be replayed
/// exactly from its seed.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// True one time in `n`.
    public mutating func chance(_ n: Int) -> Bool { Int.random(in: 0..<n, using: &self) == 0 }
}

/// The seed of a randomized test: a fresh one every run, so runs cover new ground, or the one
/// in the environment variable, to repeat a run. Printed either way, with how to repeat it.
public enum TestSeed {
    public static func draw(_ variable: String, for test: String) -> UInt64 {
        let seed = ProcessInfo.processInfo.environment[variable].flatMap { UInt64($0) } ?? UInt64.random(in: 1...(UInt64(1) << 48))
        print("SEED \(test): \(seed) (repeat with \(variable)=\(seed))")
        return seed
    }
}
