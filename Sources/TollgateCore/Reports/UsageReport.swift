extension UsageBreakdown {
    /// The breakdown as CSV: a header, one row per group, a totals row.
    public func csv() -> String {
        var text = CSV.line(["period", "meter", "model", "key", "amount", "quantity"])
        for group in groups {
            text += CSV.line([group.period ?? "", group.meter ?? "", group.model ?? "", group.key ?? "",
                              group.amount.description, String(group.quantity)])
        }
        text += CSV.line(["totals", "", "", "", totalAmount.description, String(totalQuantity)])
        return text
    }
}
