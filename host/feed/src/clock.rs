//! Time as a value: the feed reads "now" from a [`Clock`], so tests move time by hand instead of
//! sleeping, and timestamps are formatted the way channelstream writes them.
//!
//! # Format
//!
//! Channelstream writes naive UTC ISO-8601 (`2026-11-22T01:56:09.735462`: no zone, microseconds
//! omitted when zero). Its clients parse that, so the feed writes the same. Inputs (the optional
//! `timestamp` of `POST /message`) may carry a `Z` or `+00:00` suffix and up to nine fractional
//! digits; other offsets are refused rather than silently shifted.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// A timestamp from microseconds since the Unix epoch.
    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// A timestamp from whole seconds since the Unix epoch.
    pub const fn from_secs(secs: i64) -> Self {
        Self(secs.saturating_mul(1_000_000))
    }

    /// Microseconds since the Unix epoch.
    pub const fn micros(self) -> i64 {
        self.0
    }

    /// Whole seconds since the Unix epoch (rounded down).
    pub const fn secs(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    /// This timestamp moved by `micros` (saturating).
    pub const fn plus_micros(self, micros: i64) -> Self {
        Self(self.0.saturating_add(micros))
    }

    /// Parses channelstream's ISO-8601 form (see the module docs), `None` when malformed.
    pub fn parse_iso(text: &str) -> Option<Self> {
        let text = text
            .strip_suffix('Z')
            .or_else(|| text.strip_suffix("+00:00"))
            .unwrap_or(text);
        let (date, time) = text.split_once(['T', ' '])?;
        let mut date_parts = date.split('-');
        let year: i64 = parse_digits(date_parts.next()?, 4)?;
        let month: i64 = parse_digits(date_parts.next()?, 2)?;
        let day: i64 = parse_digits(date_parts.next()?, 2)?;
        if date_parts.next().is_some() || !(1..=12).contains(&month) || day < 1 {
            return None;
        }
        if day > days_in_month(year, month) {
            return None;
        }
        let (clock, fraction) = match time.split_once('.') {
            Some((clock, fraction)) => (clock, Some(fraction)),
            None => (time, None),
        };
        let mut clock_parts = clock.split(':');
        let hour: i64 = parse_digits(clock_parts.next()?, 2)?;
        let minute: i64 = parse_digits(clock_parts.next()?, 2)?;
        let second: i64 = match clock_parts.next() {
            Some(part) => parse_digits(part, 2)?,
            None => 0,
        };
        if clock_parts.next().is_some() || hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        let micros = match fraction {
            Some(digits) if (1..=9).contains(&digits.len()) => {
                let mut value: i64 = 0;
                for (index, byte) in digits.bytes().enumerate() {
                    if !byte.is_ascii_digit() {
                        return None;
                    }
                    if index < 6 {
                        value = value * 10 + i64::from(byte - b'0');
                    }
                }
                value * 10_i64.pow(6_u32.saturating_sub(u32::try_from(digits.len()).ok()?))
            }
            Some(_) => return None,
            None => 0,
        };
        let days = days_from_civil(year, month, day);
        let secs = days * 86_400 + hour * 3_600 + minute * 60 + second;
        Some(Self(secs * 1_000_000 + micros))
    }
}

impl fmt::Display for Timestamp {
    /// Channelstream's naive UTC form; microseconds are omitted when zero, as Python does.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.div_euclid(1_000_000);
        let micros = self.0.rem_euclid(1_000_000);
        let days = secs.div_euclid(86_400);
        let of_day = secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
            of_day / 3_600,
            of_day % 3_600 / 60,
            of_day % 60
        )?;
        if micros != 0 {
            write!(f, ".{micros:06}")?;
        }
        Ok(())
    }
}

/// Where the feed reads the current time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| i64::try_from(elapsed.as_micros()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Timestamp(micros)
    }
}

/// A clock that only moves when told to, for tests of expiry and garbage collection.
#[derive(Debug)]
pub struct ManualClock {
    micros: AtomicI64,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: Timestamp) -> Self {
        Self {
            micros: AtomicI64::new(start.0),
        }
    }

    /// Moves the clock forward by `secs` seconds.
    pub fn advance_secs(&self, secs: i64) {
        self.micros
            .fetch_add(secs.saturating_mul(1_000_000), Ordering::SeqCst);
    }

    /// Sets the clock to `to`.
    pub fn set(&self, to: Timestamp) {
        self.micros.store(to.0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.micros.load(Ordering::SeqCst))
    }
}

fn parse_digits(text: &str, width: usize) -> Option<i64> {
    if text.len() != width || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Howard Hinnant's `days_from_civil`: days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_python_isoformat() {
        assert_eq!(
            Timestamp::from_secs(1_600_000_000).to_string(),
            "2020-09-13T12:26:40"
        );
        assert_eq!(
            Timestamp::from_micros(1_600_000_000_000_001).to_string(),
            "2020-09-13T12:26:40.000001"
        );
        assert_eq!(
            Timestamp::from_secs(951_782_400).to_string(),
            "2000-02-29T00:00:00"
        );
    }

    #[test]
    fn parses_what_it_formats_and_common_suffixes() {
        for micros in [
            0,
            1_600_000_000_000_001,
            951_782_400_123_456,
            -86_400_000_000,
        ] {
            let stamp = Timestamp::from_micros(micros);
            assert_eq!(Timestamp::parse_iso(&stamp.to_string()), Some(stamp));
        }
        assert_eq!(
            Timestamp::parse_iso("2020-01-01T10:00:00Z"),
            Timestamp::parse_iso("2020-01-01T10:00:00")
        );
        assert_eq!(
            Timestamp::parse_iso("2020-01-01T10:00:00.5+00:00"),
            Some(Timestamp::from_micros(1_577_872_800_500_000))
        );
    }

    #[test]
    fn refuses_malformed_dates() {
        for bad in [
            "",
            "2020-02-30T00:00:00",
            "2021-02-29T00:00:00",
            "2020-13-01T00:00:00",
            "2020-01-01T24:00:00",
            "2020-01-01T10:00:00+02:00",
            "2020-01-01",
            "2020-01-01T10:00:00.",
            "２020-01-01T10:00:00",
        ] {
            assert_eq!(Timestamp::parse_iso(bad), None, "{bad}");
        }
    }
}
