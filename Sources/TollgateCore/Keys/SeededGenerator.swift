import Crypto

/// Random numbers that a seed determines: SHA-256 of (seed, block counter), 8 bytes at a time.
/// For ids and codes that a retry with the same request id must find again (a deposit's id, a
/// coupon batch's codes); the seed is what makes them unguessable, or not.
struct SeededGenerator: RandomNumberGenerator {
    private let seed: [UInt8]
    private var block: [UInt8] = []
    private var counter: UInt64 = 0
    private var offset = 32

    init(seed: [UInt8]) { self.seed = seed }

    mutating func next() -> UInt64 {
        if offset + 8 > 32 {
            var input = seed
            withUnsafeBytes(of: counter.bigEndian) { input.append(contentsOf: $0) }
            block = Array(SHA256.hash(data: input))
            counter += 1
            offset = 0
        }
        var value: UInt64 = 0
        for byte in block[offset..<offset + 8] { value = value << 8 | UInt64(byte) }
        offset += 8
        return value
    }
}
