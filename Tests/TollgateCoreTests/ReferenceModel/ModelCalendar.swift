import Foundation

// The model's own calendar: the UTC hour, day and month a moment falls in, for spend caps.
// Written with Foundation's Gregorian calendar in UTC, not with the engine's SpendPeriods
// (which does its own days-from-civil arithmetic), so a calendar bug on the engine's side shows
// up as a disagreement instead of being mirrored. A period is named by the moment it starts.

/// The calendar periods containing one moment, each as [start, end) in ms since the epoch.
struct ModelPeriods: Hashable, Sendable, CustomStringConvertible {
    var hourStart: Int64
    var hourEnd: Int64
    var dayStart: Int64
    var dayEnd: Int64
    var monthStart: Int64
    var monthEnd: Int64

    private static let calendar: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()

    init(milliseconds now: Int64) {
        // Whole seconds are exact in a Double for every moment the tests use; the ms within the
        // second are dropped first so no rounding can move a moment across a boundary.
        let second = now >= 0 ? now / 1_000 : -((-now + 999) / 1_000)
        let date = Date(timeIntervalSince1970: TimeInterval(second))
        func interval(_ component: Calendar.Component) -> (Int64, Int64) {
            guard let found = Self.calendar.dateInterval(of: component, for: date) else {
                preconditionFailure("no \(component) around \(date)")
            }
            let start = Int64(found.start.timeIntervalSince1970.rounded()) * 1_000
            let end = Int64(found.end.timeIntervalSince1970.rounded()) * 1_000
            return (start, end)
        }
        (hourStart, hourEnd) = interval(.hour)
        (dayStart, dayEnd) = interval(.day)
        (monthStart, monthEnd) = interval(.month)
        precondition(hourStart <= now && now < hourEnd && dayStart <= now && now < dayEnd && monthStart <= now && now < monthEnd)
    }

    /// A moment given as UTC calendar fields (for tests that start at a named moment).
    static func moment(_ year: Int, _ month: Int, _ day: Int, _ hour: Int = 0, _ minute: Int = 0, _ second: Int = 0) -> Int64 {
        let components = DateComponents(calendar: calendar, timeZone: calendar.timeZone,
                                        year: year, month: month, day: day, hour: hour, minute: minute, second: second)
        guard let date = calendar.date(from: components) else { preconditionFailure("no such moment") }
        return Int64(date.timeIntervalSince1970.rounded()) * 1_000
    }

    var description: String {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")!
        func text(_ ms: Int64) -> String { formatter.string(from: Date(timeIntervalSince1970: TimeInterval(ms / 1_000))) }
        return "hour [\(text(hourStart)), \(text(hourEnd))) day [\(text(dayStart)), \(text(dayEnd))) month [\(text(monthStart)), \(text(monthEnd)))"
    }
}
