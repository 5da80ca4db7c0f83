extension Price {
    /// The cost of `quantity` units as lua/30_pricing.lua charges it: whole micro-credits of
    /// `carry + quantity × price / per`, and the sub-micro remainder to carry into the next
    /// batch (so any split of a usage costs the same within 1 micro-credit). Nil when the
    /// product passes 2^53 micro-credits or `carry` is not in `0..<per`.
    public func cost(of quantity: Int64, carry: Int64 = 0) -> (micros: Int64, carry: Int64)? {
        guard quantity >= 0, carry >= 0, carry < per, let numerator = numerator(for: quantity) else { return nil }
        let total = numerator + carry
        return (total / per, total % per)
    }
}
