//! CF time coordinates and the timestamps the archive keys time slices by.
//!
//! A time slice is stored as a [`Timestamp`]: milliseconds since
//! 1970-01-01T00:00:00Z, proleptic Gregorian. Source times are
//! `<unit> since <reference>` (CF) with unit `milliseconds`, `seconds`,
//! `minutes`, `hours`, `days` or `weeks` and calendar `standard`,
//! `gregorian` or `proleptic_gregorian` (the three agree after 1582-10-15;
//! earlier dates are taken as proleptic Gregorian). `months` and `years` are
//! refused: their length is not fixed.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use std::fmt;

/// Milliseconds since the Unix epoch, UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn to_datetime(self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp_millis(self.0)
    }
    pub fn from_datetime(dt: DateTime<Utc>) -> Self {
        Timestamp(dt.timestamp_millis())
    }
    /// ISO 8601 with milliseconds, e.g. `2010-01-15T12:00:00.000Z`.
    pub fn iso(self) -> String {
        match self.to_datetime() {
            Some(d) => d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
            None => format!("{}ms", self.0),
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.iso())
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TimeError {
    #[error("time units {0:?} are not of the form '<unit> since <date>'")]
    NotCf(String),
    #[error("time unit {0:?} is not supported (use milliseconds, seconds, minutes, hours, days or weeks; months and years have no fixed length)")]
    Unit(String),
    #[error("reference date {0:?} in the time units is not a date")]
    Reference(String),
    #[error("calendar {0:?} is not supported (standard, gregorian and proleptic_gregorian are)")]
    Calendar(String),
    #[error("time value {0} is outside the representable range")]
    Range(f64),
    #[error("{0:?} is not an ISO 8601 date or date-time (e.g. 2010-01-15 or 2010-01-15T12:00:00Z)")]
    Iso(String),
}

/// A parsed CF time encoding: `value * unit_ms + epoch = timestamp`.
#[derive(Clone, Debug, PartialEq)]
pub struct CfTime {
    pub unit_ms: f64,
    pub epoch: Timestamp,
}

impl CfTime {
    /// Parses `units` and checks `calendar` (absent means standard).
    pub fn parse(units: &str, calendar: Option<&str>) -> Result<Self, TimeError> {
        if let Some(c) = calendar {
            let c = c.trim().to_ascii_lowercase();
            if !matches!(c.as_str(), "standard" | "gregorian" | "proleptic_gregorian" | "") {
                return Err(TimeError::Calendar(c));
            }
        }
        let lower = units.trim().to_ascii_lowercase();
        let (unit, reference) = lower
            .split_once(" since ")
            .ok_or_else(|| TimeError::NotCf(units.to_string()))?;
        let unit_ms = match unit.trim() {
            "milliseconds" | "millisecond" | "msec" | "msecs" | "ms" => 1.0,
            "seconds" | "second" | "secs" | "sec" | "s" => 1e3,
            "minutes" | "minute" | "mins" | "min" => 60e3,
            "hours" | "hour" | "hrs" | "hr" | "h" => 3600e3,
            "days" | "day" | "d" => 86400e3,
            "weeks" | "week" => 7.0 * 86400e3,
            other => return Err(TimeError::Unit(other.to_string())),
        };
        let epoch = parse_reference(reference.trim()).ok_or_else(|| TimeError::Reference(reference.trim().to_string()))?;
        Ok(CfTime { unit_ms, epoch: Timestamp::from_datetime(epoch) })
    }

    /// The timestamp of a coordinate value, rounded to the millisecond.
    pub fn to_timestamp(&self, value: f64) -> Result<Timestamp, TimeError> {
        let ms = (value * self.unit_ms).round() + self.epoch.0 as f64;
        if !ms.is_finite() || ms.abs() > 8.0e15 {
            return Err(TimeError::Range(value));
        }
        Ok(Timestamp(ms as i64))
    }

    /// The coordinate value of a timestamp in these units.
    pub fn to_value(&self, t: Timestamp) -> f64 {
        (t.0 - self.epoch.0) as f64 / self.unit_ms
    }
}

/// CF reference dates: `2000-01-01`, `2000-1-1 0:0:0`, `1970-01-01T00:00:00Z`,
/// `1900-01-01 00:00:00.0 UTC`, `2000-01-01 00:00:00 +00:00`.
fn parse_reference(s: &str) -> Option<DateTime<Utc>> {
    let mut s = s.trim().trim_end_matches(" utc").trim_end_matches('z').trim().to_string();
    // A trailing "+00:00"/"+0000"/" 00:00" offset: only UTC offsets are meaningful here.
    for suffix in [" +00:00", "+00:00", " +0000", "+0000", " 00:00", " +00", " 0"] {
        if let Some(stripped) = s.strip_suffix(suffix) {
            if stripped.contains(':') || suffix.contains('+') {
                s = stripped.trim().to_string();
                break;
            }
        }
    }
    let s = s.replacen('t', " ", 1);
    let (date, time) = match s.split_once(' ') {
        Some((d, t)) => (d, Some(t.trim())),
        None => (s.as_str(), None),
    };
    let mut parts = date.split('-');
    let first = parts.next()?;
    let (sign, ystr) = if first.is_empty() { (-1, parts.next()?) } else { (1, first) };
    let y: i32 = ystr.parse().ok()?;
    let m: u32 = parts.next()?.parse().ok()?;
    let d: u32 = parts.next().unwrap_or("1").parse().ok()?;
    let date = NaiveDate::from_ymd_opt(sign * y, m, d)?;
    let time = match time {
        None | Some("") => NaiveTime::MIN,
        Some(t) => {
            let mut f = t.split(':');
            let h: u32 = f.next()?.parse().ok()?;
            let mi: u32 = f.next().unwrap_or("0").parse().ok()?;
            let sec: f64 = f.next().unwrap_or("0").parse().ok()?;
            let whole = sec.trunc() as u32;
            let nanos = ((sec - sec.trunc()) * 1e9).round() as u32;
            NaiveTime::from_hms_nano_opt(h, mi, whole, nanos)?
        }
    };
    Some(Utc.from_utc_datetime(&NaiveDateTime::new(date, time)))
}

/// A time given by a person: ISO 8601 date or date-time, UTC unless an
/// offset is given.
pub fn parse_user_time(s: &str) -> Result<Timestamp, TimeError> {
    let t = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(Timestamp::from_datetime(dt.with_timezone(&Utc)));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(t.trim_end_matches('Z'), fmt) {
            return Ok(Timestamp::from_datetime(Utc.from_utc_datetime(&n)));
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(Timestamp::from_datetime(Utc.from_utc_datetime(&d.and_time(NaiveTime::MIN))));
    }
    Err(TimeError::Iso(s.to_string()))
}

/// The pool directory name of a time slice: `YYYY-MM-DDTHH-MM-SS.sss`.
pub fn format_slice_dir(t: Timestamp) -> String {
    match t.to_datetime() {
        Some(d) => d.format("%Y-%m-%dT%H-%M-%S%.3f").to_string(),
        None => format!("t{}", t.0),
    }
}

/// Inverse of [`format_slice_dir`]; `None` for anything else.
pub fn parse_slice_dir(s: &str) -> Option<Timestamp> {
    let n = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H-%M-%S%.3f").ok()?;
    let t = Timestamp::from_datetime(Utc.from_utc_datetime(&n));
    (format_slice_dir(t) == s).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cf_units_parse() {
        let cases = [
            ("days since 2000-01-01", 0.0, "2000-01-01T00:00:00.000Z"),
            ("days since 2000-01-01 00:00:00", 14.5, "2000-01-15T12:00:00.000Z"),
            ("hours since 1970-01-01T00:00:00Z", 25.0, "1970-01-02T01:00:00.000Z"),
            ("seconds since 1981-01-01 00:00:00 UTC", 1.5, "1981-01-01T00:00:01.500Z"),
            ("Minutes Since 2010-1-1 0:0:0", 90.0, "2010-01-01T01:30:00.000Z"),
            ("days since 1800-01-01 00:00:00.0", 1.0, "1800-01-02T00:00:00.000Z"),
            ("days since 2000-01-01 00:00:00 +00:00", 1.0, "2000-01-02T00:00:00.000Z"),
        ];
        for (units, v, iso) in cases {
            let cf = CfTime::parse(units, Some("gregorian")).unwrap();
            let t = cf.to_timestamp(v).unwrap();
            assert_eq!(t.iso(), iso, "{units}");
            assert!((cf.to_value(t) - v).abs() < 1e-9);
        }
    }

    #[test]
    fn cf_units_refused() {
        assert!(matches!(CfTime::parse("months since 2000-01-01", None), Err(TimeError::Unit(_))));
        assert!(matches!(CfTime::parse("days", None), Err(TimeError::NotCf(_))));
        assert!(matches!(CfTime::parse("days since yesterday", None), Err(TimeError::Reference(_))));
        assert!(matches!(CfTime::parse("days since 2000-01-01", Some("360_day")), Err(TimeError::Calendar(_))));
        let cf = CfTime::parse("days since 2000-01-01", None).unwrap();
        assert!(cf.to_timestamp(f64::NAN).is_err());
        assert!(cf.to_timestamp(1e300).is_err());
    }

    #[test]
    fn slice_dirs_round_trip() {
        let t = parse_user_time("2010-01-15T12:30:00.250Z").unwrap();
        assert_eq!(format_slice_dir(t), "2010-01-15T12-30-00.250");
        assert_eq!(parse_slice_dir("2010-01-15T12-30-00.250"), Some(t));
        assert_eq!(parse_slice_dir("static"), None);
        assert_eq!(parse_slice_dir("2010-01-15T12-30-00"), None);
    }

    #[test]
    fn user_times() {
        assert_eq!(parse_user_time("2010-01-15").unwrap().iso(), "2010-01-15T00:00:00.000Z");
        assert_eq!(parse_user_time("2010-01-15T12:00:00Z").unwrap().iso(), "2010-01-15T12:00:00.000Z");
        assert_eq!(parse_user_time("2010-01-15T12:00:00+02:00").unwrap().iso(), "2010-01-15T10:00:00.000Z");
        assert!(parse_user_time("15/01/2010").is_err());
    }
}
