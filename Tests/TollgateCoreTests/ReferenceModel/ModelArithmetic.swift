// Exact integer helpers of the reference model.

/// ⌊a / b⌋ for b > 0, also for negative a.
func floorDivision<T: SignedInteger>(_ a: T, _ b: T) -> T {
    precondition(b > 0)
    let quotient = a / b
    return a % b < 0 ? quotient - 1 : quotient
}

/// ⌊a / b⌋ and the remainder in 0..<b, for b > 0.
func floorDivisionWithRemainder<T: SignedInteger>(_ a: T, _ b: T) -> (quotient: T, remainder: T) {
    let quotient = floorDivision(a, b)
    return (quotient, a - quotient * b)
}

/// ⌈a / b⌉ for b > 0.
func ceilingDivision<T: SignedInteger>(_ a: T, _ b: T) -> T {
    -floorDivision(-a, b)
}

/// The largest amount the engine holds exactly: 2^53 − 1 (Lua numbers are doubles).
let maximumExact: Int64 = 9_007_199_254_740_991

extension Int64 {
    /// The product, or `Int64.max` when it would overflow (only drained amounts use it, where
    /// any value beyond every excess means "fully drained").
    func saturatingProduct(_ other: Int64) -> Int64 {
        let (product, overflow) = multipliedReportingOverflow(by: other)
        return overflow ? .max : product
    }
}
