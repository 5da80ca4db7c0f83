/// Sums of numbers read back from Redis (amounts, quantities, aggregates). Each stored number
/// fits an `Int64`, but a sum of several need not: a free meter lets quantities near 2^53
/// pile up in the aggregates, and Swift's `+` traps on overflow, which would take `serve`
/// down. Every sum of stored values goes through here and fails with `amount_out_of_range`.
extension Int64 {
    /// Adds `value`, or throws `amount_out_of_range` when the sum leaves `Int64`.
    mutating func addStored(_ value: Int64, _ what: @autoclosure () -> String = "a sum") throws(TollgateError) {
        let (sum, overflow) = addingReportingOverflow(value)
        guard !overflow else {
            throw TollgateError(.amountOutOfRange, "\(what()) is beyond what the engine can add up exactly")
        }
        self = sum
    }
}
