import Foundation

/// UTC ISO 8601 times with milliseconds, the one time format of JSON and reports.
public enum Timestamp {
    /// `2026-11-25T11:41:00.123Z` for ms since the epoch.
    public static func iso8601(milliseconds: Int64) -> String {
        let seconds = milliseconds.quotientAndRemainder(dividingBy: 1000)
        var wholeSeconds = seconds.quotient
        var millis = seconds.remainder
        if millis < 0 {
            millis += 1000
            wholeSeconds -= 1
        }
        var time = time_t(wholeSeconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
            Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
            Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), Int(millis))
    }
}
