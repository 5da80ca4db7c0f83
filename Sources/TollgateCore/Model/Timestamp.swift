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

extension Timestamp {
    /// Parses a UTC time given as a date (`2026-11-25`, midnight UTC), a date-time
    /// (`2026-11-25T14:00`, `2026-11-25T14:00:00Z`, `…:00.123Z`, `…+01:00`) or ms since the
    /// epoch (10 to 15 digits, so a bare year is never read as one); nil when the text is none
    /// of these or before 1970.
    public static func parse(_ text: String) -> Int64? {
        guard let value = parseAnyTime(text), value >= 0 else { return nil }
        return value
    }

    private static func parseAnyTime(_ text: String) -> Int64? {
        let bytes = Array(text.utf8)
        if (10...15).contains(bytes.count), bytes.allSatisfy({ (48...57).contains($0) }) {
            return Int64(text)
        }
        var index = 0
        func number(_ width: Int) -> Int64? {
            guard index + width <= bytes.count else { return nil }
            var value: Int64 = 0
            for byte in bytes[index..<index + width] {
                guard (48...57).contains(byte) else { return nil }
                value = value * 10 + Int64(byte - 48)
            }
            index += width
            return value
        }
        func expect(_ character: Character) -> Bool {
            guard index < bytes.count, bytes[index] == character.asciiValue! else { return false }
            index += 1
            return true
        }
        guard let year = number(4), expect("-"), let month = number(2), expect("-"), let day = number(2),
              (1...12).contains(month), (1...31).contains(day) else { return nil }
        var milliseconds = SpendPeriods.days(fromCivil: year, month, day) * 86_400_000
        guard SpendPeriods.civil(fromDays: SpendPeriods.days(fromCivil: year, month, day)) == (year, month) else { return nil }
        if index == bytes.count { return milliseconds }
        guard expect("T") || expect(" "), let hour = number(2), expect(":"), let minute = number(2),
              hour < 24, minute < 60 else { return nil }
        var second: Int64 = 0
        var fraction: Int64 = 0
        if expect(":") {
            guard let s = number(2), s < 60 else { return nil }
            second = s
            if expect(".") {
                var digits = 0
                while index < bytes.count, (48...57).contains(bytes[index]) {
                    if digits < 3 { fraction = fraction * 10 + Int64(bytes[index] - 48) }
                    digits += 1
                    index += 1
                }
                guard digits > 0 else { return nil }
                if digits < 3 { for _ in digits..<3 { fraction *= 10 } }
            }
        }
        milliseconds += ((hour * 60 + minute) * 60 + second) * 1000 + fraction
        if index == bytes.count || expect("Z") || expect("z") {
            return index == bytes.count ? milliseconds : nil
        }
        let sign: Int64
        if expect("+") { sign = 1 } else if expect("-") { sign = -1 } else { return nil }
        guard let offsetHours = number(2) else { return nil }
        _ = expect(":")
        guard let offsetMinutes = number(2), index == bytes.count, offsetHours < 24, offsetMinutes < 60 else { return nil }
        return milliseconds - sign * (offsetHours * 60 + offsetMinutes) * 60_000
    }
}
