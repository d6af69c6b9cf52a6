//! Timestamps as xcauth 2 stores them: naive UTC text
//! `YYYY-MM-DD HH:MM:SS[.ffffff]` (docs/xcauth2.md §3.2).
//!
//! Python's `datetime` writes the fraction only when it is non-zero, and
//! SQLite's `CURRENT_TIMESTAMP` column default never writes one, so a reader
//! must accept both forms. Internally a timestamp is whole microseconds since
//! the Unix epoch (`datetime`'s resolution). The civil-date conversion and the
//! text form are [`crate::clock::Civil`]'s; this file adds the strict parser.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::clock::{days_from_civil, Civil};

const MICROS_PER_SECOND: i64 = 1_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// Whole microseconds since the epoch (floor), saturating far outside ±292 000 years.
pub fn unix_micros(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
        Err(e) => {
            let d = e.duration();
            let whole = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
            // Floor: -0.5 µs is -1 µs.
            if d.subsec_nanos() % 1000 > 0 {
                whole.saturating_neg().saturating_sub(1)
            } else {
                whole.saturating_neg()
            }
        }
    }
}

/// The `SystemTime` `micros` microseconds after the epoch.
pub fn from_unix_micros(micros: i64) -> SystemTime {
    let magnitude = Duration::from_micros(micros.unsigned_abs());
    if micros >= 0 {
        UNIX_EPOCH + magnitude
    } else {
        UNIX_EPOCH - magnitude
    }
}

/// A `Duration` in whole microseconds, saturating.
pub(crate) fn duration_micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Formats `t` as `YYYY-MM-DD HH:MM:SS`, with `.ffffff` only when the
/// sub-second part (truncated to microseconds) is non-zero.
pub fn format_timestamp(t: SystemTime) -> String {
    format_micros(unix_micros(t))
}

/// Parses either stored form (`YYYY-MM-DD HH:MM:SS` or with a 1–9 digit
/// fraction; a `T` separator is accepted too). Digits beyond microseconds are
/// truncated. `None` for anything else, including impossible dates.
pub fn parse_timestamp(text: &str) -> Option<SystemTime> {
    parse_micros(text).map(from_unix_micros)
}

pub(crate) fn format_micros(micros: i64) -> String {
    Civil::from_unix_micros(micros).to_string()
}

pub(crate) fn parse_micros(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if b[10] != b' ' && b[10] != b'T' {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let minute = digits(&b[14..16])?;
    let second = digits(&b[17..19])?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let frac = match &b[19..] {
        [] => 0,
        [b'.', rest @ ..] if (1..=9).contains(&rest.len()) => {
            let mut micros = 0;
            for i in 0..6 {
                let d = match rest.get(i) {
                    Some(c) => digits(std::slice::from_ref(c))?,
                    None => 0,
                };
                micros = micros * 10 + d;
            }
            // Digits past the sixth must still be digits.
            if rest.len() > 6 {
                digits(&rest[6..])?;
            }
            micros
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * SECONDS_PER_DAY + hour * 3600 + minute * 60 + second;
    Some(secs * MICROS_PER_SECOND + frac)
}

fn digits(b: &[u8]) -> Option<i64> {
    let mut n: i64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + i64::from(c - b'0');
    }
    Some(n)
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::civil_from_days;

    #[test]
    fn known_dates() {
        // (date, days since epoch), from `date -u -d ... +%s` / 86400.
        let cases = [
            ((1970, 1, 1), 0),
            ((1969, 12, 31), -1),
            ((2000, 2, 29), 11_016),
            ((2000, 3, 1), 11_017),
            ((1900, 3, 1), -25_508),
            ((2020, 12, 13), 18_609),
            ((2038, 1, 19), 24_855),
            ((2100, 2, 28), 47_540),
            ((2100, 3, 1), 47_541),
            ((1600, 1, 1), -135_140),
            ((9999, 12, 31), 2_932_896),
        ];
        for ((y, m, d), days) in cases {
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
            assert_eq!(civil_from_days(days), (y, m, d), "{days}");
        }
    }

    #[test]
    fn round_trip_every_day_of_four_centuries() {
        let start = days_from_civil(1800, 1, 1);
        let mut expect = (1800, 1, 1);
        for days in start..start + 146_097 {
            assert_eq!(civil_from_days(days), expect);
            assert_eq!(days_from_civil(expect.0, expect.1, expect.2), days);
            expect.2 += 1;
            if expect.2 > days_in_month(expect.0, expect.1) {
                expect = (expect.0, expect.1 + 1, 1);
                if expect.1 > 12 {
                    expect = (expect.0 + 1, 1, 1);
                }
            }
        }
    }

    #[test]
    fn formats_both_forms() {
        assert_eq!(format_timestamp(UNIX_EPOCH), "1970-01-01 00:00:00");
        assert_eq!(
            format_timestamp(UNIX_EPOCH + Duration::from_secs(1_607_817_600)),
            "2020-12-13 00:00:00"
        );
        assert_eq!(
            format_timestamp(UNIX_EPOCH + Duration::from_micros(1_234_567_890_123_456)),
            "2009-02-13 23:31:30.123456"
        );
        assert_eq!(
            format_timestamp(UNIX_EPOCH + Duration::from_micros(1_000_050)),
            "1970-01-01 00:00:01.000050"
        );
        // Nanoseconds below a microsecond are truncated, not shown.
        assert_eq!(
            format_timestamp(UNIX_EPOCH + Duration::from_nanos(999)),
            "1970-01-01 00:00:00"
        );
        assert_eq!(
            format_timestamp(UNIX_EPOCH - Duration::from_micros(1)),
            "1969-12-31 23:59:59.999999"
        );
    }

    #[test]
    fn parses_both_forms() {
        let at = |s| parse_micros(s);
        assert_eq!(at("1970-01-01 00:00:00"), Some(0));
        assert_eq!(at("2009-02-13 23:31:30"), Some(1_234_567_890_000_000));
        assert_eq!(
            at("2009-02-13 23:31:30.123456"),
            Some(1_234_567_890_123_456)
        );
        assert_eq!(at("2009-02-13 23:31:30.5"), Some(1_234_567_890_500_000));
        assert_eq!(
            at("2009-02-13T23:31:30.123456789"),
            Some(1_234_567_890_123_456)
        );
        assert_eq!(at("1969-12-31 23:59:59.999999"), Some(-1));
        assert_eq!(at("2000-02-29 12:00:00"), Some(951_825_600_000_000));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "2009-02-13",
            "2009-02-13 23:31",
            "2009-02-13 23:31:30.",
            "2009-02-13 23:31:30.1234567890",
            "2009-02-13 23:31:30Z",
            "2009-02-13 23:31:30 ",
            "2009-13-01 00:00:00",
            "2009-02-29 00:00:00",
            "1900-02-29 00:00:00",
            "2009-02-13 24:00:00",
            "2009-02-13 23:60:00",
            "2009-02-13 23:59:60",
            "2009/02/13 23:31:30",
            "+009-02-13 23:31:30",
            "2009-02-13 23:31:30.12a",
            "2009-02-13 23:31:30.1234567a",
            "２００９-02-13 23:31:30",
        ] {
            assert_eq!(parse_micros(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn format_then_parse_is_identity() {
        for micros in [
            0,
            1,
            -1,
            999_999,
            1_000_000,
            1_607_817_600_123_000,
            -86_400_000_001,
        ] {
            assert_eq!(parse_micros(&format_micros(micros)), Some(micros));
        }
        let t = UNIX_EPOCH + Duration::from_micros(1_700_000_000_654_321);
        assert_eq!(parse_timestamp(&format_timestamp(t)), Some(t));
    }
}
