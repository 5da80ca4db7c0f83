/// The UTC calendar periods that spend caps count in, for one moment: each as an id and the
/// moment it ends (ms since the epoch). Computed here once and passed into every Lua step.
public struct SpendPeriods: Sendable, Hashable {
    public var hour: Int64
    public var hourEnd: Int64
    public var day: Int64
    public var dayEnd: Int64
    /// Months since year 0 (year * 12 + month - 1).
    public var month: Int64
    public var monthEnd: Int64

    private static let hourMs: Int64 = 3_600_000
    private static let dayMs: Int64 = 86_400_000

    /// The periods containing `milliseconds` since the epoch.
    public init(milliseconds now: Int64) {
        hour = Self.floorDiv(now, Self.hourMs)
        hourEnd = (hour + 1) * Self.hourMs
        day = Self.floorDiv(now, Self.dayMs)
        dayEnd = (day + 1) * Self.dayMs
        let (year, month) = Self.civil(fromDays: day)
        self.month = year * 12 + month - 1
        let (nextYear, nextMonth) = month == 12 ? (year + 1, Int64(1)) : (year, month + 1)
        monthEnd = Self.days(fromCivil: nextYear, nextMonth, 1) * Self.dayMs
    }

    /// The six values as Lua receives them (ARGV[2...7]).
    var arguments: [String] {
        [String(hour), String(hourEnd), String(day), String(dayEnd), String(month), String(monthEnd)]
    }

    private static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    // Howard Hinnant's civil-calendar algorithms (proleptic Gregorian, UTC).
    static func civil(fromDays days: Int64) -> (year: Int64, month: Int64) {
        let z = days + 719_468
        let era = floorDiv(z, 146_097)
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month)
    }

    static func days(fromCivil year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = floorDiv(y, 400)
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}
