//! Time is a parameter: everything that compares against "now" asks a [`Clock`].
//!
//! The original read "now" once at import time, so tokens never expired inside a
//! long-running process (docs/xcauth2.md §7). Here every request reads the
//! clock it was given; production passes [`SystemClock`], tests pass
//! [`ManualClock`]. This is the only file that reads the system's clocks
//! (`SystemTime::now`, `Instant::now`): clippy's `disallowed-methods` refuses them
//! elsewhere. Socket deadlines, which the kernel measures in real time, read
//! [`SystemClock`] directly.
//!
//! [`Civil`] is the one civil-date formatter (`YYYY-MM-DD HH:MM:SS[.ffffff]`), used by
//! the database's timestamps and the daemon's log lines.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A source of the current time: wall-clock time since the Unix epoch (tokens, cache
/// ages), and monotonic time for deadlines and cool-downs.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;

    /// The current monotonic time (deadlines, circuit-breaker cool-downs, budgets).
    fn instant(&self) -> Instant;

    /// The current time as whole Unix seconds (negative before 1970).
    fn unix_seconds(&self) -> i64 {
        unix_seconds(self.now())
    }
}

/// Whole seconds since the epoch of a `SystemTime` (floor).
pub fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => {
            let d = e.duration();
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            if d.subsec_nanos() > 0 {
                -secs - 1
            } else {
                -secs
            }
        }
    }
}

/// The system's wall clock, read on every call.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

// The one place that reads the system's clocks.
#[allow(clippy::disallowed_methods)]
impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn instant(&self) -> Instant {
        Instant::now()
    }
}

const MICROS_PER_SECOND: i64 = 1_000_000;

/// A clock that tests set by hand. Its monotonic time starts when it is made and moves
/// forward with the wall-clock time (never backwards: setting the wall clock back leaves it
/// where it is, and it moves on once the wall clock moves forward again).
#[derive(Debug)]
pub struct ManualClock {
    /// Wall-clock microseconds since the epoch.
    micros: AtomicI64,
    /// Monotonic microseconds since `origin`: the sum of every forward move.
    moved: AtomicI64,
    /// The monotonic instant the clock was made at.
    origin: Instant,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::at(0)
    }
}

impl ManualClock {
    /// A clock that reads `secs` seconds after the epoch.
    pub fn at(secs: i64) -> Self {
        Self {
            micros: AtomicI64::new(secs.saturating_mul(MICROS_PER_SECOND)),
            moved: AtomicI64::new(0),
            origin: SystemClock.instant(),
        }
    }

    /// Moves the clock to `secs` (the monotonic time only moves if that is forward).
    pub fn set(&self, secs: i64) {
        let to = secs.saturating_mul(MICROS_PER_SECOND);
        let from = self.micros.swap(to, Ordering::SeqCst);
        self.move_monotonic(to.saturating_sub(from));
    }

    /// Moves the clock forward by `secs`.
    pub fn advance(&self, secs: i64) {
        self.advance_micros(secs.saturating_mul(MICROS_PER_SECOND));
    }

    /// Moves the clock forward by `by` (microsecond resolution).
    pub fn advance_by(&self, by: Duration) {
        self.advance_micros(i64::try_from(by.as_micros()).unwrap_or(i64::MAX));
    }

    fn advance_micros(&self, micros: i64) {
        self.micros.fetch_add(micros, Ordering::SeqCst);
        self.move_monotonic(micros);
    }

    /// Adds a forward move to the monotonic time; a backward one leaves it alone.
    fn move_monotonic(&self, micros: i64) {
        if micros > 0 {
            self.moved.fetch_add(micros, Ordering::SeqCst);
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        let m = self.micros.load(Ordering::SeqCst);
        let magnitude = Duration::from_micros(m.unsigned_abs());
        if m >= 0 {
            UNIX_EPOCH + magnitude
        } else {
            UNIX_EPOCH - magnitude
        }
    }

    fn instant(&self) -> Instant {
        let moved = self.moved.load(Ordering::SeqCst).max(0);
        self.origin + Duration::from_micros(moved.unsigned_abs())
    }
}

/// A civil UTC date and time (proleptic Gregorian), for log and database text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    /// Year.
    pub year: i64,
    /// Month, 1–12.
    pub month: u32,
    /// Day of month, 1–31.
    pub day: u32,
    /// Hour, 0–23.
    pub hour: u32,
    /// Minute, 0–59.
    pub minute: u32,
    /// Second, 0–59.
    pub second: u32,
    /// Microseconds, 0–999999.
    pub micros: u32,
}

impl Civil {
    /// The UTC civil time of `t`.
    pub fn from_system_time(t: SystemTime) -> Self {
        let secs = unix_seconds(t);
        let micros = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => d.subsec_micros(),
            Err(e) => (1_000_000 - e.duration().subsec_micros()) % 1_000_000,
        };
        let mut c = Self::from_unix(secs);
        c.micros = micros;
        c
    }

    /// The UTC civil time of whole microseconds since the epoch.
    pub fn from_unix_micros(micros: i64) -> Self {
        let mut c = Self::from_unix(micros.div_euclid(MICROS_PER_SECOND));
        c.micros = u32::try_from(micros.rem_euclid(MICROS_PER_SECOND)).unwrap_or(0);
        c
    }

    /// The UTC civil time of whole Unix seconds.
    pub fn from_unix(secs: i64) -> Self {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        Self {
            year,
            month: u32::try_from(month).unwrap_or(1),
            day: u32::try_from(day).unwrap_or(1),
            hour: u32::try_from(rem / 3600).unwrap_or(0),
            minute: u32::try_from(rem % 3600 / 60).unwrap_or(0),
            second: u32::try_from(rem % 60).unwrap_or(0),
            micros: 0,
        }
    }

    /// Whole Unix seconds of this civil time (ignores `micros`).
    pub fn to_unix(&self) -> i64 {
        let days = days_from_civil(self.year, i64::from(self.month), i64::from(self.day));
        days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (`month` 1–12).
pub(crate) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date `days` days after 1970-01-01.
pub(crate) fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl std::fmt::Display for Civil {
    /// `YYYY-MM-DD HH:MM:SS`, plus `.ffffff` when the microseconds are non-zero
    /// (the text form xcauth 2 stores in sqlite).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )?;
        if self.micros != 0 {
            write!(f, ".{:06}", self.micros)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves() {
        let c = ManualClock::at(100);
        assert_eq!(c.unix_seconds(), 100);
        c.advance(5);
        assert_eq!(c.unix_seconds(), 105);
        c.set(-3);
        assert_eq!(c.unix_seconds(), -3);
    }

    #[test]
    fn civil_round_trips_known_dates() {
        assert_eq!(Civil::from_unix(0).to_string(), "1970-01-01 00:00:00");
        assert_eq!(
            Civil::from_unix(1_700_000_000).to_string(),
            "2023-11-14 22:13:20"
        );
        assert_eq!(
            Civil::from_unix(951_782_400).to_string(),
            "2000-02-29 00:00:00"
        );
        assert_eq!(Civil::from_unix(-1).to_string(), "1969-12-31 23:59:59");
        for s in [-86_401, 0, 59, 951_782_400, 4_102_444_800, 1_700_000_000] {
            assert_eq!(Civil::from_unix(s).to_unix(), s);
        }
        let t = UNIX_EPOCH + Duration::from_micros(1_500_000);
        assert_eq!(
            Civil::from_system_time(t).to_string(),
            "1970-01-01 00:00:01.500000"
        );
    }

    #[test]
    fn manual_clock_moves_its_monotonic_time_forward_only() {
        let c = ManualClock::at(100);
        let t0 = c.instant();
        c.advance_by(Duration::from_millis(1500));
        assert_eq!(c.instant() - t0, Duration::from_millis(1500));
        assert_eq!(c.unix_seconds(), 101);
        // The wall clock is set back: the monotonic time stays where it was.
        c.set(50);
        assert_eq!(c.unix_seconds(), 50);
        assert_eq!(c.instant() - t0, Duration::from_millis(1500));
        // From there, every forward move of the wall clock moves it on by as much.
        c.set(60);
        assert_eq!(c.instant() - t0, Duration::from_millis(11_500));
        c.advance(2);
        assert_eq!(c.instant() - t0, Duration::from_millis(13_500));
        c.advance(-5);
        assert_eq!(c.unix_seconds(), 57);
        assert_eq!(c.instant() - t0, Duration::from_millis(13_500));
        // A clock set before the epoch from the start moves forward all the same.
        let c = ManualClock::at(-10);
        let t0 = c.instant();
        c.set(-4);
        assert_eq!(c.instant() - t0, Duration::from_secs(6));
    }

    #[test]
    fn system_clock_is_not_frozen() {
        let a = SystemClock.now();
        std::thread::sleep(Duration::from_millis(5));
        assert!(SystemClock.now() > a);
    }
}
