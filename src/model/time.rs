//! CF time: calendars, coordinate units, and the timestamps the archive keys
//! time slices by. Pure arithmetic on integers; no time zone database.
//!
//! # Keys
//!
//! A time slice is stored under a [`Timestamp`]: milliseconds since
//! 1970-01-01T00:00:00 **counted in the dataset's own calendar**, every
//! calendar day being exactly 86 400 000 ms (no leap seconds). A key means a
//! date only together with its [`Calendar`]: key 0 is 1970-01-01 in every
//! calendar, key 86 400 000 × 360 is 1971-01-01 in `360_day` but 1970-12-27
//! in `standard`. Conversions: [`Calendar::key`] (civil date-time → key) and
//! [`Calendar::civil`] (key → civil date-time, total over `i64`). Keys
//! from CF values ([`CfTime::to_timestamp`]) stay within ±8e15 ms (about
//! ±253 000 years), where `f64` holds every millisecond exactly.
//!
//! # Calendars (CF conventions §4.4.1)
//!
//! | CF name (aliases)                | days                                            | year 0 |
//! |----------------------------------|-------------------------------------------------|--------|
//! | `standard` (`gregorian`, absent) | Julian up to 1582-10-04, Gregorian from 1582-10-15 | no  |
//! | `proleptic_gregorian`            | Gregorian rules for every year                  | yes    |
//! | `julian`                         | a leap year every 4 years                       | no     |
//! | `noleap` (`365_day`)             | 365 days, February has 28                       | yes    |
//! | `all_leap` (`366_day`)           | 366 days, February has 29                       | yes    |
//! | `360_day`                        | twelve months of 30 days (2001-02-30 exists)    | yes    |
//! | `none`                           | proleptic Gregorian arithmetic (see below)      | yes    |
//!
//! - `standard`: the day count is continuous across the switch: 1582-10-04
//!   is followed by 1582-10-15, and 1582-10-05 to 1582-10-14 do not exist (they
//!   are refused). From 1582-10-15 on a key equals Unix milliseconds, so
//!   archives keyed before calendars were supported keep their keys. Earlier
//!   dates are Julian dates (before calendars were supported they were taken
//!   as proleptic Gregorian).
//! - Every other calendar counts its own days from its own 1970-01-01
//!   (Julian 1970-01-01 is Gregorian 1970-01-14).
//! - `none` is CF's "no calendar" (e.g. an idealised model whose time
//!   coordinate has no dates). It uses proleptic Gregorian arithmetic only
//!   so that such axes can be named, parsed and keyed; its dates mean nothing.
//!
//! # Year zero
//!
//! As cftime 1.6 by default: `standard` and `julian` have **no year 0**
//! (year -1 = 1 BC is followed by year 1, and a date in year 0 is refused);
//! `proleptic_gregorian`, `noleap`, `all_leap`, `360_day` and `none` use
//! astronomical numbering **with** a year 0 (year 0 = 1 BC, -1 = 2 BC).
//! Julian leap years are the years divisible by 4 in astronomical numbering,
//! so in `standard`/`julian` years -1, -5, -9, … are leap years.
//!
//! # Units (`<unit> since <reference>`, UDUNITS spellings)
//!
//! | unit                                                      | length              |
//! |-----------------------------------------------------------|---------------------|
//! | `microseconds` `microsecond` `microsecs` `microsec` `usec` `usecs` `us` | 0.001 ms |
//! | `milliseconds` `millisecond` `millisecs` `millisec` `msecs` `msec` `ms` | 1 ms |
//! | `seconds` `second` `secs` `sec` `s`                       | 1 000 ms            |
//! | `minutes` `minute` `mins` `min`                           | 60 s                |
//! | `hours` `hour` `hrs` `hr` `h`                             | 3 600 s             |
//! | `days` `day` `d`                                          | 86 400 s            |
//! | `weeks` `week`                                            | 7 days              |
//! | `common_years` `common_year`                              | 365 days            |
//! | `months` `month`                                          | see below           |
//! | `years` `year` `yrs` `yr`                                 | see below           |
//!
//! `weeks` and `common_years` are UDUNITS units that cftime does not know
//! (it accepts `common_years` in `noleap` only, where it is one year).
//!
//! Months and years have no calendar length in CF: UDUNITS defines
//! `year` = 365.242198781 days (the tropical year) and `month` = year / 12
//! (≈ 30.436875 days), and that is what they mean here in every calendar
//! except `360_day`. In `360_day` a month is exactly 30 days and a year
//! exactly 360 days, as cftime does for months (`months since 2000-01-01`,
//! value 1.5 → 2000-02-16); cftime refuses `years` there and refuses months
//! and years in every other calendar, so those only follow UDUNITS.
//!
//! The reference is read in the dataset's calendar (`days since 2000-02-30`
//! is valid in `360_day` only) and accepts what CF files contain:
//! `2000-01-01`, `2000-1-1 0:0:0`, `1-1-1 00:00:0.0`, `1970-01-01T00:00:00Z`,
//! `1900-01-01 00:00:00.0 UTC`, `2000-01-01 00:00:00 +00:00`, `-100-01-01`,
//! a date without its day (`2000-01`), a bare hour (`2000-01-01 12`), and a
//! UTC offset `+01:00`, `+1:00`, `-05:30`, `+0100`, `+01`, which is
//! subtracted (`00:00 +01:00` is 23:00 UTC the day before). Digits past the
//! millisecond are dropped.
//!
//! # Text forms
//!
//! - [`Calendar::iso`]: `2010-01-15T12:00:00.000Z` in `standard` and
//!   `proleptic_gregorian`; other calendars omit the `Z`
//!   (`2001-02-30T00:00:00.000` in `360_day`): their dates are not UTC dates.
//! - [`Calendar::slice_dir`]: the pool directory of a slice,
//!   `2010-01-15T12-00-00.000`, read back by [`Calendar::parse_slice_dir`].
//! - [`Calendar::parse_user_time`]: ISO 8601 as people type it.
//!
//! Years are written with at least four digits, a leading `-` when negative
//! and a leading `+` above 9999 (as chrono writes them).
//!
//! [`format_slice_dir`], [`parse_slice_dir`], [`parse_user_time`] and
//! [`Timestamp::iso`] are the `standard`-calendar forms.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

const MS_PER_DAY: i64 = 86_400_000;
/// The largest |key| [`CfTime::to_timestamp`] produces (about 253 000 years).
const MAX_CF_MS: f64 = 8.0e15;
/// The UDUNITS year (`year`, tropical year) in days; `month` is a twelfth.
const UDUNITS_YEAR_DAYS: f64 = 365.242198781;
const MONTH_NAMES: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

// ---------------------------------------------------------------------------
// Timestamp

/// Milliseconds since 1970-01-01T00:00:00 counted in a calendar's own days
/// (see the module docs). In the `standard` calendar from 1582-10-15 on this
/// is Unix time in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The proleptic Gregorian UTC date-time of these Unix milliseconds: the
    /// `standard` calendar's date only from 1582-10-15 on.
    pub fn to_datetime(self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp_millis(self.0)
    }

    pub fn from_datetime(dt: DateTime<Utc>) -> Self {
        Timestamp(dt.timestamp_millis())
    }

    /// ISO 8601 with milliseconds in the `standard` calendar, e.g.
    /// `2010-01-15T12:00:00.000Z`.
    pub fn iso(self) -> String {
        Calendar::Standard.iso(self)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.iso())
    }
}

// ---------------------------------------------------------------------------
// Errors

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TimeError {
    #[error("time units {0:?} are not of the form '<unit> since <date>'")]
    NotCf(String),
    #[error(
        "time unit {0:?} is not supported (use milliseconds, seconds, minutes, hours, days, weeks, months, years or common_years)"
    )]
    Unit(String),
    #[error("reference date {0:?} in the time units is not a date (expected e.g. 2000-01-01 or 2000-01-01 00:00:00)")]
    Reference(String),
    #[error(
        "calendar {0:?} is not supported (use standard, gregorian, proleptic_gregorian, julian, noleap, 365_day, all_leap, 366_day, 360_day or none)"
    )]
    Calendar(String),
    #[error("time value {0} is outside the representable range (about 253 000 years either side of 1970)")]
    Range(f64),
    #[error("{0:?} is not an ISO 8601 date or date-time (e.g. 2010-01-15 or 2010-01-15T12:00:00Z)")]
    Iso(String),
    /// Well-formed but not a date of that calendar, e.g. 2001-02-29 in
    /// `noleap` or 1582-10-10 in `standard`.
    #[error("{date} is not a date in the {calendar} calendar ({reason})")]
    InvalidDate { date: String, calendar: Calendar, reason: String },
    #[error("{0} is too far from 1970 to be represented as a time key")]
    DateRange(String),
}

// ---------------------------------------------------------------------------
// Calendar

/// A CF calendar (the `calendar` attribute of a time coordinate).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Calendar {
    /// `standard` / `gregorian`: Julian before 1582-10-15, Gregorian after.
    #[default]
    Standard,
    ProlepticGregorian,
    Julian,
    /// `noleap` / `365_day`.
    NoLeap,
    /// `all_leap` / `366_day`.
    AllLeap,
    /// `360_day`.
    Day360,
    /// `none`: no calendar; proleptic Gregorian arithmetic, for naming and
    /// parsing only.
    None,
}

impl Calendar {
    pub const ALL: [Calendar; 7] = [
        Calendar::Standard,
        Calendar::ProlepticGregorian,
        Calendar::Julian,
        Calendar::NoLeap,
        Calendar::AllLeap,
        Calendar::Day360,
        Calendar::None,
    ];

    /// Reads a CF `calendar` attribute: case-insensitive, trimmed; absent or
    /// empty means `standard`.
    pub fn parse(text: Option<&str>) -> Result<Calendar, TimeError> {
        let text = text.unwrap_or("").trim();
        Ok(match text.to_ascii_lowercase().as_str() {
            "" | "standard" | "gregorian" => Calendar::Standard,
            "proleptic_gregorian" => Calendar::ProlepticGregorian,
            "julian" => Calendar::Julian,
            "noleap" | "365_day" => Calendar::NoLeap,
            "all_leap" | "366_day" => Calendar::AllLeap,
            "360_day" => Calendar::Day360,
            "none" => Calendar::None,
            _ => return Err(TimeError::Calendar(text.to_string())),
        })
    }

    /// The canonical CF name.
    pub fn name(self) -> &'static str {
        match self {
            Calendar::Standard => "standard",
            Calendar::ProlepticGregorian => "proleptic_gregorian",
            Calendar::Julian => "julian",
            Calendar::NoLeap => "noleap",
            Calendar::AllLeap => "all_leap",
            Calendar::Day360 => "360_day",
            Calendar::None => "none",
        }
    }

    /// Whether year 0 exists (false for `standard` and `julian`).
    pub fn has_year_zero(self) -> bool {
        !matches!(self, Calendar::Standard | Calendar::Julian)
    }

    /// The number of the last day of a month (31 for October 1582 in
    /// `standard`, although ten of its days do not exist); `None` for a
    /// month outside 1..=12 or a year 0 the calendar lacks.
    pub fn days_in_month(self, year: i64, month: u32) -> Option<u32> {
        if !(1..=12).contains(&month) || (year == 0 && !self.has_year_zero()) {
            return None;
        }
        let leap = match self {
            Calendar::Day360 => return Some(30),
            Calendar::NoLeap => false,
            Calendar::AllLeap => true,
            Calendar::Julian => julian_leap(astronomical(year)),
            Calendar::Standard if year < 1582 => julian_leap(astronomical(year)),
            Calendar::Standard | Calendar::ProlepticGregorian | Calendar::None => gregorian_leap(year),
        };
        Some(month_length(month, leap))
    }

    /// The key of a civil date-time; refuses what is not a date-time of this
    /// calendar (and, `Err(DateRange)`, keys beyond `i64`).
    pub fn key(self, c: &CivilTime) -> Result<Timestamp, TimeError> {
        if let Some(reason) = self.invalid_reason(c) {
            return Err(TimeError::InvalidDate { date: c.brief(), calendar: self, reason });
        }
        let day = self.day_number(i128::from(c.year), c.month, c.day);
        let ms = day * i128::from(MS_PER_DAY) + i128::from(c.ms_of_day());
        i64::try_from(ms).map(Timestamp).map_err(|_| TimeError::DateRange(c.to_string()))
    }

    /// The civil date-time of a key (the inverse of [`Calendar::key`]).
    pub fn civil(self, t: Timestamp) -> CivilTime {
        let day = t.0.div_euclid(MS_PER_DAY);
        let ms = t.0.rem_euclid(MS_PER_DAY);
        let (year, month, day) = self.date_of_day(day);
        CivilTime {
            year,
            month,
            day,
            hour: (ms / 3_600_000) as u32,
            minute: (ms / 60_000 % 60) as u32,
            second: (ms / 1000 % 60) as u32,
            millis: (ms % 1000) as u32,
        }
    }

    /// ISO 8601 with milliseconds: `2010-01-15T12:00:00.000Z` in `standard`
    /// and `proleptic_gregorian`, without the `Z` in the other calendars.
    pub fn iso(self, t: Timestamp) -> String {
        let zone = if matches!(self, Calendar::Standard | Calendar::ProlepticGregorian) { "Z" } else { "" };
        format!("{}{zone}", self.civil(t))
    }

    /// The pool directory name of a time slice: `YYYY-MM-DDTHH-MM-SS.sss`.
    pub fn slice_dir(self, t: Timestamp) -> String {
        let c = self.civil(t);
        format!(
            "{}-{:02}-{:02}T{:02}-{:02}-{:02}.{:03}",
            year_text(c.year),
            c.month,
            c.day,
            c.hour,
            c.minute,
            c.second,
            c.millis
        )
    }

    /// Inverse of [`Calendar::slice_dir`]; `None` for anything it does not
    /// produce.
    pub fn parse_slice_dir(self, s: &str) -> Option<Timestamp> {
        let t = self.key(&slice_dir_fields(s)?).ok()?;
        (self.slice_dir(t) == s).then_some(t)
    }

    /// A time given by a person: an ISO 8601 date or date-time of this
    /// calendar (`2001-02-30`, `2001-02-30T12:00`, `2001-02-30 12:00:00.5`),
    /// UTC unless an offset (`Z`, `+02:00`, `-0530`) is given.
    pub fn parse_user_time(self, s: &str) -> Result<Timestamp, TimeError> {
        self.read_time(s, || TimeError::Iso(s.to_string()))
    }

    /// Reads a written date-time (user time or CF reference) in this
    /// calendar; `syntax` is the error for text that is no date-time at all.
    fn read_time(self, s: &str, syntax: impl FnOnce() -> TimeError) -> Result<Timestamp, TimeError> {
        let w = parse_written(s).ok_or_else(syntax)?;
        let t = self.key(&w.civil)?;
        t.0.checked_sub(w.offset_ms).map(Timestamp).ok_or_else(|| TimeError::DateRange(s.trim().to_string()))
    }

    fn invalid_reason(self, c: &CivilTime) -> Option<String> {
        if c.year == 0 && !self.has_year_zero() {
            return Some("it has no year 0: year -1 (1 BC) is followed by year 1".to_string());
        }
        let Some(last) = self.days_in_month(c.year, c.month) else {
            return Some("months run from 1 to 12".to_string());
        };
        if c.day < 1 || c.day > last {
            return Some(match self {
                Calendar::Day360 => "every month has 30 days".to_string(),
                _ => format!("{} {} has {last} days", MONTH_NAMES[(c.month - 1) as usize], c.year),
            });
        }
        if self == Calendar::Standard && (c.year, c.month) == (1582, 10) && (5..=14).contains(&c.day) {
            return Some(
                "1582-10-05 to 1582-10-14 were skipped when the Gregorian calendar replaced the Julian".to_string(),
            );
        }
        let limits = [
            (c.hour, 23, "hours"),
            (c.minute, 59, "minutes"),
            (c.second, 59, "seconds"),
            (c.millis, 999, "milliseconds"),
        ];
        limits.iter().find(|(v, max, _)| v > max).map(|(_, max, what)| format!("{what} run from 0 to {max}"))
    }

    /// Days since this calendar's 1970-01-01 of a valid date.
    fn day_number(self, year: i128, month: u32, day: u32) -> i128 {
        match self {
            Calendar::Standard if (year, month, day) >= (1582, 10, 15) => gregorian_days(year, month, day),
            Calendar::Standard => julian_days(astronomical(year), month, day) + JULIAN_TO_STANDARD,
            Calendar::ProlepticGregorian | Calendar::None => gregorian_days(year, month, day),
            Calendar::Julian => julian_days(astronomical(year), month, day),
            Calendar::NoLeap => (year - 1970) * 365 + i128::from(CUMULATIVE_DAYS[0][(month - 1) as usize] + day - 1),
            Calendar::AllLeap => (year - 1970) * 366 + i128::from(CUMULATIVE_DAYS[1][(month - 1) as usize] + day - 1),
            Calendar::Day360 => (year - 1970) * 360 + i128::from(30 * (month - 1) + day - 1),
        }
    }

    /// The date of a day number (inverse of `day_number`).
    fn date_of_day(self, day: i64) -> (i64, u32, u32) {
        match self {
            Calendar::Standard if day >= GREGORIAN_START => gregorian_date(day),
            Calendar::Standard => without_year_zero(julian_date(day - JULIAN_TO_STANDARD as i64)),
            Calendar::ProlepticGregorian | Calendar::None => gregorian_date(day),
            Calendar::Julian => without_year_zero(julian_date(day)),
            Calendar::NoLeap => fixed_year_date(day, 365, &CUMULATIVE_DAYS[0]),
            Calendar::AllLeap => fixed_year_date(day, 366, &CUMULATIVE_DAYS[1]),
            Calendar::Day360 => {
                let doy = day.rem_euclid(360) as u32;
                (1970 + day.div_euclid(360), doy / 30 + 1, doy % 30 + 1)
            }
        }
    }
}

impl fmt::Display for Calendar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Calendar {
    type Err = TimeError;
    fn from_str(s: &str) -> Result<Self, TimeError> {
        Calendar::parse(Some(s))
    }
}

impl Serialize for Calendar {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Calendar {
    /// Any name [`Calendar::parse`] accepts.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Calendar::parse(Some(&name)).map_err(serde::de::Error::custom)
    }
}

// ---------------------------------------------------------------------------
// Civil date-times

/// A date and time of day as written in some calendar. The year is numbered
/// as the calendar numbers it (see "Year zero" in the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CivilTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub millis: u32,
}

impl CivilTime {
    pub const fn new(year: i64, month: u32, day: u32, hour: u32, minute: u32, second: u32, millis: u32) -> Self {
        CivilTime { year, month, day, hour, minute, second, millis }
    }

    /// Midnight at the start of a day.
    pub const fn date(year: i64, month: u32, day: u32) -> Self {
        CivilTime::new(year, month, day, 0, 0, 0, 0)
    }

    fn ms_of_day(&self) -> i64 {
        ((i64::from(self.hour) * 60 + i64::from(self.minute)) * 60 + i64::from(self.second)) * 1000
            + i64::from(self.millis)
    }

    /// The date alone at midnight, the full date-time otherwise.
    fn brief(&self) -> String {
        if (self.hour, self.minute, self.second, self.millis) == (0, 0, 0, 0) {
            format!("{}-{:02}-{:02}", year_text(self.year), self.month, self.day)
        } else {
            self.to_string()
        }
    }
}

impl fmt::Display for CivilTime {
    /// `YYYY-MM-DDTHH:MM:SS.sss`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}",
            year_text(self.year),
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            self.millis
        )
    }
}

/// Four digits at least, `-` when negative, `+` above 9999 (as chrono's `%Y`).
fn year_text(year: i64) -> String {
    match year {
        0..=9999 => format!("{year:04}"),
        10000.. => format!("+{year}"),
        _ => format!("-{:04}", year.unsigned_abs()),
    }
}

// ---------------------------------------------------------------------------
// Day arithmetic. Day numbers count from the calendar's own 1970-01-01;
// Gregorian and Julian years here are astronomical (year 0 = 1 BC).

/// Days before each month: [noleap, all_leap].
const CUMULATIVE_DAYS: [[u32; 13]; 2] = [
    [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365],
    [0, 31, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335, 366],
];
/// Gregorian day number of 1582-10-15, the first Gregorian day of `standard`.
const GREGORIAN_START: i64 = gregorian_days(1582, 10, 15) as i64;
/// Julian day numbers + this = `standard` (Gregorian) day numbers: Julian
/// 1582-10-04 is the day before Gregorian 1582-10-15.
const JULIAN_TO_STANDARD: i128 = gregorian_days(1582, 10, 15) - 1 - julian_days(1582, 10, 4);

fn gregorian_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn julian_leap(astronomical_year: i64) -> bool {
    astronomical_year % 4 == 0
}

fn month_length(month: u32, leap: bool) -> u32 {
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Year numbering without a year 0 (…, -2, -1, 1, 2, …) to astronomical.
fn astronomical<T: Copy + PartialOrd + From<i8> + std::ops::Add<Output = T>>(year: T) -> T {
    if year < T::from(0) { year + T::from(1) } else { year }
}

fn without_year_zero((year, month, day): (i64, u32, u32)) -> (i64, u32, u32) {
    (if year <= 0 { year - 1 } else { year }, month, day)
}

/// Day of a March-based year (March 1 = 0): months with leap days last.
const fn march_day_of_year(month: u32, day: u32) -> i128 {
    let mp = if month > 2 { month - 3 } else { month + 9 };
    ((153 * mp + 2) / 5 + day - 1) as i128
}

/// Proleptic Gregorian day number (H. Hinnant's `days_from_civil`).
const fn gregorian_days(year: i128, month: u32, day: u32) -> i128 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + march_day_of_year(month, day);
    era * 146_097 + doe - 719_468
}

/// Julian day number counted from Julian 1970-01-01.
const fn julian_days(year: i128, month: u32, day: u32) -> i128 {
    julian_days_from_0000_03_01(year, month, day) - JULIAN_EPOCH
}

/// Four-year cycles of 1461 days, each starting on March 1 of a year
/// divisible by 4 (so that its leap day comes last).
const fn julian_days_from_0000_03_01(year: i128, month: u32, day: u32) -> i128 {
    let y = if month <= 2 { year - 1 } else { year };
    let cycle = y.div_euclid(4);
    let yoc = y - cycle * 4;
    cycle * 1461 + yoc * 365 + march_day_of_year(month, day)
}

/// Julian 1970-01-01 counted from Julian 0000-03-01.
const JULIAN_EPOCH: i128 = julian_days_from_0000_03_01(1970, 1, 1);

/// Month and day from a March-based day of year (0 = March 1).
fn from_march_day(doy: i64) -> (u32, u32, bool) {
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (month, day, month <= 2)
}

/// Inverse of `gregorian_days` (H. Hinnant's `civil_from_days`).
fn gregorian_date(day: i64) -> (i64, u32, u32) {
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let (month, d, next_year) = from_march_day(doe - (365 * yoe + yoe / 4 - yoe / 100));
    (era * 400 + yoe + i64::from(next_year), month, d)
}

/// Inverse of `julian_days`; astronomical year.
fn julian_date(day: i64) -> (i64, u32, u32) {
    let z = day + JULIAN_EPOCH as i64;
    let cycle = z.div_euclid(1461);
    let doc = z - cycle * 1461;
    let yoc = (doc - doc / 1460) / 365;
    let (month, d, next_year) = from_march_day(doc - 365 * yoc);
    (cycle * 4 + yoc + i64::from(next_year), month, d)
}

/// Dates of calendars whose years all have `len` days.
fn fixed_year_date(day: i64, len: i64, cumulative: &[u32; 13]) -> (i64, u32, u32) {
    let doy = day.rem_euclid(len) as u32;
    let month = (1..12).rev().find(|&m| cumulative[m] <= doy).unwrap_or(0);
    (1970 + day.div_euclid(len), month as u32 + 1, doy - cumulative[month] + 1)
}

// ---------------------------------------------------------------------------
// CF units

/// A parsed CF time encoding in a calendar:
/// `timestamp = epoch + round(value * unit_ms)`.
#[derive(Clone, Debug, PartialEq)]
pub struct CfTime {
    /// The unit in milliseconds (not necessarily whole: UDUNITS months).
    pub unit_ms: f64,
    /// The key of the reference date-time.
    pub epoch: Timestamp,
    calendar: Calendar,
}

impl CfTime {
    /// Parses `units` in the calendar named by `calendar` (absent means
    /// `standard`).
    pub fn parse(units: &str, calendar: Option<&str>) -> Result<Self, TimeError> {
        Self::with_calendar(units, Calendar::parse(calendar)?)
    }

    /// Parses `<unit> since <reference>`, the reference read in `calendar`.
    pub fn with_calendar(units: &str, calendar: Calendar) -> Result<Self, TimeError> {
        let lower = units.trim().to_ascii_lowercase();
        let (unit, reference) = split_since(&lower).ok_or_else(|| TimeError::NotCf(units.to_string()))?;
        let unit_ms = unit_length_ms(unit, calendar).ok_or_else(|| TimeError::Unit(unit.to_string()))?;
        let epoch = calendar.read_time(reference, || TimeError::Reference(reference.to_string()))?;
        Ok(CfTime { unit_ms, epoch, calendar })
    }

    pub fn calendar(&self) -> Calendar {
        self.calendar
    }

    /// The key of a coordinate value, rounded to the millisecond. Refuses
    /// non-finite values and keys beyond ±8e15 ms (about ±253 000 years).
    pub fn to_timestamp(&self, value: f64) -> Result<Timestamp, TimeError> {
        // One rounding of an exact-if-representable product: integral and
        // binary-fraction values of whole-millisecond units land exactly.
        let offset = (value * self.unit_ms).round();
        if !offset.is_finite() || offset.abs() > MAX_CF_MS {
            return Err(TimeError::Range(value));
        }
        let ms = i128::from(self.epoch.0) + offset as i128;
        if ms.unsigned_abs() > MAX_CF_MS as u128 {
            return Err(TimeError::Range(value));
        }
        Ok(Timestamp(ms as i64))
    }

    /// The coordinate value of a key in these units: one correctly rounded
    /// division, so a value `to_timestamp` took exactly (a whole number of
    /// milliseconds in these units) comes back bit for bit.
    pub fn to_value(&self, t: Timestamp) -> f64 {
        (i128::from(t.0) - i128::from(self.epoch.0)) as f64 / self.unit_ms
    }

    /// [`CfTime::to_value`] when it converts back to exactly `t`.
    pub fn exact_value(&self, t: Timestamp) -> Option<f64> {
        let v = self.to_value(t);
        (self.to_timestamp(v) == Ok(t)).then_some(v)
    }
}

/// `("days", "2000-01-01")` from `"days since 2000-01-01"` (lowercase).
fn split_since(units: &str) -> Option<(&str, &str)> {
    let (unit, rest) = units.split_once(|c: char| c.is_ascii_whitespace())?;
    let reference = rest.trim_start().strip_prefix("since")?;
    if !reference.starts_with(|c: char| c.is_ascii_whitespace()) || reference.trim().is_empty() {
        return None;
    }
    Some((unit, reference.trim()))
}

/// The length of a (lowercase) unit in milliseconds in a calendar.
fn unit_length_ms(unit: &str, calendar: Calendar) -> Option<f64> {
    let day = MS_PER_DAY as f64;
    let year = if calendar == Calendar::Day360 { 360.0 * day } else { UDUNITS_YEAR_DAYS * day };
    Some(match unit {
        "microseconds" | "microsecond" | "microsecs" | "microsec" | "usecs" | "usec" | "us" => 1e-3,
        "milliseconds" | "millisecond" | "millisecs" | "millisec" | "msecs" | "msec" | "ms" => 1.0,
        "seconds" | "second" | "secs" | "sec" | "s" => 1e3,
        "minutes" | "minute" | "mins" | "min" => 60e3,
        "hours" | "hour" | "hrs" | "hr" | "h" => 3600e3,
        "days" | "day" | "d" => day,
        "weeks" | "week" => 7.0 * day,
        "common_years" | "common_year" => 365.0 * day,
        "months" | "month" => year / 12.0,
        "years" | "year" | "yrs" | "yr" => year,
        _ => return None,
    })
}

// ---------------------------------------------------------------------------
// Reading written date-times (CF references and user times)

/// A date-time as written: the civil fields and the UTC offset to subtract.
struct Written {
    civil: CivilTime,
    offset_ms: i64,
}

/// `[+-]Y-M[-D][(T| +)h[:m[:s[.f]]]][zone]`, case-insensitive, where zone is
/// `Z`, `UTC`, `GMT` or `±h[h][:mm]`/`±hhmm` (unsigned after a space).
fn parse_written(text: &str) -> Option<Written> {
    let lower = text.trim().to_ascii_lowercase();
    let mut p = Scan { s: lower.as_bytes(), at: 0 };
    let mut civil = parse_date(&mut p)?;
    if p.eat(b't') {
        parse_clock(&mut p, &mut civil)?;
    } else {
        let mark = p.at;
        if p.spaces() && p.peek().is_some_and(|b| b.is_ascii_digit()) {
            parse_clock(&mut p, &mut civil)?;
        } else {
            p.at = mark;
        }
    }
    let offset_ms = parse_zone(&mut p)?;
    p.done().then_some(Written { civil, offset_ms })
}

fn parse_date(p: &mut Scan<'_>) -> Option<CivilTime> {
    let negative = p.eat(b'-');
    if !negative {
        p.eat(b'+');
    }
    let year = p.number(18)? as i64;
    if !p.eat(b'-') {
        return None;
    }
    let month = p.number(2)? as u32;
    let day = if p.eat(b'-') { p.number(2)? as u32 } else { 1 };
    Some(CivilTime::date(if negative { -year } else { year }, month, day))
}

/// `h[:m[:s[.fraction]]]`; digits past the millisecond are dropped.
fn parse_clock(p: &mut Scan<'_>, c: &mut CivilTime) -> Option<()> {
    c.hour = p.number(2)? as u32;
    if p.eat(b':') {
        c.minute = p.number(2)? as u32;
        if p.eat(b':') {
            c.second = p.number(2)? as u32;
            if p.eat(b'.') {
                let digits = p.digits();
                if digits.is_empty() {
                    return None;
                }
                c.millis = digits.iter().chain([b'0'; 3].iter()).take(3).fold(0, |a, d| a * 10 + u32::from(d - b'0'));
            }
        }
    }
    Some(())
}

/// The UTC offset in milliseconds (0 when none is written).
fn parse_zone(p: &mut Scan<'_>) -> Option<i64> {
    let spaced = p.spaces();
    if p.done() {
        return Some(0);
    }
    if p.eat_word("utc") || p.eat_word("gmt") || p.eat(b'z') {
        p.spaces();
        return Some(0);
    }
    let sign = match p.peek()? {
        b'+' | b'-' => {
            let minus = p.eat(b'-');
            p.eat(b'+');
            if minus { -1 } else { 1 }
        }
        b if b.is_ascii_digit() && spaced => 1,
        _ => return None,
    };
    let start = p.at;
    let value = p.number(4)? as i64;
    let (hours, minutes) = match p.at - start {
        1 | 2 if p.eat(b':') => (value, p.number(2)? as i64),
        1 | 2 => (value, 0),
        _ => (value / 100, value % 100),
    };
    if hours > 23 || minutes > 59 {
        return None;
    }
    p.spaces();
    Some(sign * (hours * 60 + minutes) * 60_000)
}

/// The fields of `[+-]YYYY-MM-DDTHH-MM-SS.sss` (not yet checked canonical).
fn slice_dir_fields(s: &str) -> Option<CivilTime> {
    const TAIL: &[u8; 19] = b"-00-00T00-00-00.000";
    if !s.is_ascii() || s.len() <= TAIL.len() {
        return None;
    }
    let (year, tail) = s.split_at(s.len() - TAIL.len());
    let shape_ok = tail.bytes().zip(TAIL).all(|(c, &p)| if p == b'0' { c.is_ascii_digit() } else { c == p });
    let digits = year.strip_prefix(['-', '+']).unwrap_or(year);
    if !shape_ok || digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let field = |from: usize, to: usize| tail[from..to].parse::<u32>().ok();
    Some(CivilTime {
        year: year.parse().ok()?,
        month: field(1, 3)?,
        day: field(4, 6)?,
        hour: field(7, 9)?,
        minute: field(10, 12)?,
        second: field(13, 15)?,
        millis: field(16, 19)?,
    })
}

/// A cursor over ASCII-lowercased text.
struct Scan<'a> {
    s: &'a [u8],
    at: usize,
}

impl<'a> Scan<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn done(&self) -> bool {
        self.at >= self.s.len()
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        self.at += usize::from(hit);
        hit
    }

    fn eat_word(&mut self, w: &str) -> bool {
        let hit = self.s[self.at..].starts_with(w.as_bytes());
        if hit {
            self.at += w.len();
        }
        hit
    }

    /// Skips ASCII white space; whether there was any.
    fn spaces(&mut self) -> bool {
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.at += 1;
        }
        self.at > start
    }

    fn digits(&mut self) -> &'a [u8] {
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        &self.s[start..self.at]
    }

    /// A run of 1 to `max` (≤ 18) digits.
    fn number(&mut self, max: usize) -> Option<u64> {
        let digits = self.digits();
        if digits.is_empty() || digits.len() > max {
            return None;
        }
        Some(digits.iter().fold(0, |a, d| a * 10 + u64::from(d - b'0')))
    }
}

// ---------------------------------------------------------------------------
// Standard-calendar forms

/// A time given by a person in the `standard` calendar (see
/// [`Calendar::parse_user_time`]).
pub fn parse_user_time(s: &str) -> Result<Timestamp, TimeError> {
    Calendar::Standard.parse_user_time(s)
}

/// The pool directory name of a time slice in the `standard` calendar:
/// `YYYY-MM-DDTHH-MM-SS.sss`.
pub fn format_slice_dir(t: Timestamp) -> String {
    Calendar::Standard.slice_dir(t)
}

/// Inverse of [`format_slice_dir`]; `None` for anything else.
pub fn parse_slice_dir(s: &str) -> Option<Timestamp> {
    Calendar::Standard.parse_slice_dir(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DAY: i64 = MS_PER_DAY;

    fn cal(name: &str) -> Calendar {
        Calendar::parse(Some(name)).unwrap()
    }

    fn civil_of(units: &str, calendar: &str, value: f64) -> CivilTime {
        let cf = CfTime::parse(units, Some(calendar)).unwrap();
        cf.calendar().civil(cf.to_timestamp(value).unwrap())
    }

    // -- Existing behaviour (standard calendar) ------------------------------

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
        assert!(matches!(CfTime::parse("fortnights since 2000-01-01", None), Err(TimeError::Unit(_))));
        assert!(matches!(CfTime::parse("days", None), Err(TimeError::NotCf(_))));
        assert!(matches!(CfTime::parse("days since", None), Err(TimeError::NotCf(_))));
        assert!(matches!(CfTime::parse("days sinc 2000-01-01", None), Err(TimeError::NotCf(_))));
        assert!(matches!(CfTime::parse("days since yesterday", None), Err(TimeError::Reference(_))));
        assert!(matches!(CfTime::parse("days since 2000-01-01", Some("martian")), Err(TimeError::Calendar(_))));
        // Now accepted: months, years and the other CF calendars.
        assert!(CfTime::parse("months since 2000-01-01", None).is_ok());
        assert!(CfTime::parse("days since 2000-01-01", Some("360_day")).is_ok());
        let cf = CfTime::parse("days since 2000-01-01", None).unwrap();
        assert!(cf.to_timestamp(f64::NAN).is_err());
        assert!(cf.to_timestamp(f64::INFINITY).is_err());
        assert!(cf.to_timestamp(1e300).is_err());
        assert!(cf.to_timestamp(1e11).is_err());
        assert!(cf.to_timestamp(9e7).is_ok());
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

    #[test]
    fn standard_matches_unix_time_and_chrono_after_1582() {
        let t = parse_user_time("2010-01-15T12:30:00.250Z").unwrap();
        assert_eq!(t.0, 1_263_558_600_250);
        assert_eq!(Calendar::Standard.key(&CivilTime::date(1582, 10, 15)).unwrap().0, -12_219_292_800_000);
        assert_eq!(Calendar::Standard.key(&CivilTime::date(2000, 1, 1)).unwrap().0, 946_684_800_000);
        assert_eq!(Timestamp(253_402_300_800_000).iso(), "+10000-01-01T00:00:00.000Z");
        assert_eq!(format_slice_dir(Timestamp(253_402_300_800_000)), "+10000-01-01T00-00-00.000");
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00.000Z");
    }

    // -- Calendars ------------------------------------------------------------

    #[test]
    fn calendar_names() {
        let cases = [
            (None, Calendar::Standard),
            (Some(""), Calendar::Standard),
            (Some("  "), Calendar::Standard),
            (Some("standard"), Calendar::Standard),
            (Some("Gregorian"), Calendar::Standard),
            (Some(" PROLEPTIC_GREGORIAN "), Calendar::ProlepticGregorian),
            (Some("julian"), Calendar::Julian),
            (Some("noleap"), Calendar::NoLeap),
            (Some("365_day"), Calendar::NoLeap),
            (Some("all_leap"), Calendar::AllLeap),
            (Some("366_DAY"), Calendar::AllLeap),
            (Some("360_day"), Calendar::Day360),
            (Some("none"), Calendar::None),
        ];
        for (text, expected) in cases {
            assert_eq!(Calendar::parse(text).unwrap(), expected, "{text:?}");
        }
        for c in Calendar::ALL {
            assert_eq!(cal(c.name()), c);
            assert_eq!(c.name().parse::<Calendar>().unwrap(), c);
            assert_eq!(c.to_string(), c.name());
        }
        let names: Vec<&str> = Calendar::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(names, ["standard", "proleptic_gregorian", "julian", "noleap", "all_leap", "360_day", "none"]);
        for bad in ["gregorian_proleptic", "360", "leap", "standard calendar"] {
            let e = Calendar::parse(Some(bad)).unwrap_err();
            assert!(matches!(e, TimeError::Calendar(_)), "{bad}");
            let msg = e.to_string();
            for accepted in [
                "standard",
                "gregorian",
                "proleptic_gregorian",
                "julian",
                "noleap",
                "365_day",
                "all_leap",
                "366_day",
                "360_day",
                "none",
            ] {
                assert!(msg.contains(accepted), "{msg}");
            }
        }
        assert_eq!(Calendar::default(), Calendar::Standard);
    }

    #[test]
    fn calendar_serde() {
        assert_eq!(serde_json::to_string(&Calendar::Day360).unwrap(), "\"360_day\"");
        assert_eq!(serde_json::to_string(&Calendar::NoLeap).unwrap(), "\"noleap\"");
        assert_eq!(serde_json::from_str::<Calendar>("\"365_day\"").unwrap(), Calendar::NoLeap);
        assert_eq!(serde_json::from_str::<Calendar>("\"Gregorian\"").unwrap(), Calendar::Standard);
        for c in Calendar::ALL {
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(serde_json::from_str::<Calendar>(&json).unwrap(), c);
        }
        assert!(serde_json::from_str::<Calendar>("\"martian\"").is_err());
    }

    #[test]
    fn month_lengths_and_leap_years() {
        use Calendar::*;
        let cases = [
            // standard: Julian rule before 1582, Gregorian after, no year 0
            (Standard, 2000, 2, Some(29)),
            (Standard, 1900, 2, Some(28)),
            (Standard, 2001, 2, Some(28)),
            (Standard, 1500, 2, Some(29)),
            (Standard, 1582, 10, Some(31)),
            (Standard, 4, 2, Some(29)),
            (Standard, -1, 2, Some(29)),
            (Standard, -5, 2, Some(29)),
            (Standard, -4, 2, Some(28)),
            (Standard, 0, 1, Option::None),
            (Standard, 2000, 13, Option::None),
            (Standard, 2000, 0, Option::None),
            (Standard, 2000, 4, Some(30)),
            (Standard, 2000, 12, Some(31)),
            // proleptic_gregorian: astronomical years
            (ProlepticGregorian, 1500, 2, Some(28)),
            (ProlepticGregorian, 1600, 2, Some(29)),
            (ProlepticGregorian, 0, 2, Some(29)),
            (ProlepticGregorian, -1, 2, Some(28)),
            (ProlepticGregorian, -4, 2, Some(29)),
            (ProlepticGregorian, -100, 2, Some(28)),
            (ProlepticGregorian, -400, 2, Some(29)),
            // julian
            (Julian, 1900, 2, Some(29)),
            (Julian, 2001, 2, Some(28)),
            (Julian, -1, 2, Some(29)),
            (Julian, -4, 2, Some(28)),
            (Julian, 0, 2, Option::None),
            // fixed-length years
            (NoLeap, 2000, 2, Some(28)),
            (NoLeap, 0, 2, Some(28)),
            (NoLeap, 2000, 1, Some(31)),
            (AllLeap, 2001, 2, Some(29)),
            (AllLeap, 2001, 11, Some(30)),
            (Day360, 2001, 2, Some(30)),
            (Day360, 2001, 1, Some(30)),
            (Day360, 2001, 7, Some(30)),
            (None, 1900, 2, Some(28)),
            (None, 0, 2, Some(29)),
        ];
        for (c, y, m, n) in cases {
            assert_eq!(c.days_in_month(y, m), n, "{c} {y}-{m}");
        }
        // Days per year from the keys.
        let year_days = |c: Calendar, y: i64| {
            let next = if y == -1 && !c.has_year_zero() { 1 } else { y + 1 };
            (c.key(&CivilTime::date(next, 1, 1)).unwrap().0 - c.key(&CivilTime::date(y, 1, 1)).unwrap().0) / DAY
        };
        assert_eq!(year_days(Standard, 1582), 355);
        assert_eq!(year_days(Standard, 1500), 366);
        assert_eq!(year_days(Standard, 1900), 365);
        assert_eq!(year_days(Standard, -1), 366);
        assert_eq!(year_days(ProlepticGregorian, 1500), 365);
        assert_eq!(year_days(Julian, 1900), 366);
        assert_eq!(year_days(Julian, -1), 366);
        assert_eq!(year_days(NoLeap, 2000), 365);
        assert_eq!(year_days(AllLeap, 2001), 366);
        assert_eq!(year_days(Day360, 2000), 360);
    }

    #[test]
    fn keys_of_known_dates() {
        use Calendar::*;
        let cases = [
            (Standard, CivilTime::date(1970, 1, 1), 0),
            (Standard, CivilTime::date(1582, 10, 15), -141_427 * DAY),
            (Standard, CivilTime::date(1582, 10, 4), -141_428 * DAY),
            (Standard, CivilTime::new(1582, 10, 4, 23, 59, 59, 999), -141_427 * DAY - 1),
            (Standard, CivilTime::date(1, 1, 1), -719_164 * DAY),
            (Standard, CivilTime::date(-1, 12, 31), -719_165 * DAY),
            (ProlepticGregorian, CivilTime::date(1582, 10, 4), -141_438 * DAY),
            (ProlepticGregorian, CivilTime::date(1, 1, 1), -719_162 * DAY),
            (ProlepticGregorian, CivilTime::date(0, 12, 31), -719_163 * DAY),
            (ProlepticGregorian, CivilTime::new(2000, 1, 1, 12, 30, 15, 250), 946_729_815_250),
            (Julian, CivilTime::date(1970, 1, 1), 0),
            (Julian, CivilTime::date(1969, 12, 19), -13 * DAY),
            (NoLeap, CivilTime::date(1971, 1, 1), 365 * DAY),
            (NoLeap, CivilTime::date(1970, 3, 1), 59 * DAY),
            (NoLeap, CivilTime::date(1969, 1, 1), -365 * DAY),
            (AllLeap, CivilTime::date(1971, 1, 1), 366 * DAY),
            (AllLeap, CivilTime::date(1970, 3, 1), 60 * DAY),
            (Day360, CivilTime::date(1971, 1, 1), 360 * DAY),
            (Day360, CivilTime::date(1970, 2, 30), 59 * DAY),
            (Day360, CivilTime::date(2001, 2, 30), (31 * 360 + 59) * DAY),
            (Day360, CivilTime::date(0, 1, 1), -1970 * 360 * DAY),
            (None, CivilTime::date(2000, 1, 1), 946_684_800_000),
        ];
        for (c, civil, key) in cases {
            assert_eq!(c.key(&civil), Ok(Timestamp(key)), "{c} {civil}");
            assert_eq!(c.civil(Timestamp(key)), civil, "{c} {key}");
        }
        assert_eq!(JULIAN_TO_STANDARD, 13);
    }

    #[test]
    fn invalid_dates_refused() {
        use Calendar::*;
        let cases = [
            (NoLeap, CivilTime::date(2001, 2, 29), "2001-02-29 is not a date in the noleap calendar"),
            (NoLeap, CivilTime::date(2000, 2, 29), "2000-02-29 is not a date in the noleap calendar"),
            (AllLeap, CivilTime::date(2001, 2, 30), "2001-02-30 is not a date in the all_leap calendar"),
            (Day360, CivilTime::date(2001, 1, 31), "2001-01-31 is not a date in the 360_day calendar"),
            (Standard, CivilTime::date(2001, 2, 30), "2001-02-30 is not a date in the standard calendar"),
            (Standard, CivilTime::date(1900, 2, 29), "1900-02-29 is not a date in the standard calendar"),
            (Standard, CivilTime::date(1582, 10, 5), "1582-10-05 is not a date in the standard calendar"),
            (Standard, CivilTime::date(1582, 10, 14), "1582-10-14 is not a date in the standard calendar"),
            (Standard, CivilTime::date(0, 6, 1), "0000-06-01 is not a date in the standard calendar"),
            (Julian, CivilTime::date(0, 6, 1), "0000-06-01 is not a date in the julian calendar"),
            (ProlepticGregorian, CivilTime::date(1900, 2, 29), "1900-02-29 is not a date in the proleptic_gregorian"),
            (Julian, CivilTime::date(1900, 2, 30), "1900-02-30 is not a date in the julian calendar"),
            (Standard, CivilTime::date(2000, 13, 1), "months run from 1 to 12"),
            (Day360, CivilTime::date(2000, 0, 1), "months run from 1 to 12"),
            (Day360, CivilTime::date(2000, 1, 0), "every month has 30 days"),
            (Standard, CivilTime::new(2000, 1, 1, 24, 0, 0, 0), "hours run from 0 to 23"),
            (Standard, CivilTime::new(2000, 1, 1, 0, 60, 0, 0), "minutes run from 0 to 59"),
            (Standard, CivilTime::new(2000, 1, 1, 0, 0, 60, 0), "seconds run from 0 to 59"),
            (Standard, CivilTime::new(2000, 1, 1, 0, 0, 0, 1000), "milliseconds run from 0 to 999"),
        ];
        for (c, civil, message) in cases {
            let e = c.key(&civil).unwrap_err();
            assert!(matches!(e, TimeError::InvalidDate { .. }), "{c} {civil}");
            let text = e.to_string();
            assert!(text.contains(message), "{text}");
            assert!(!text.contains('\n'));
        }
        assert!(Standard.key(&CivilTime::date(1582, 10, 4)).is_ok());
        assert!(Standard.key(&CivilTime::date(1582, 10, 15)).is_ok());
        assert!(ProlepticGregorian.key(&CivilTime::date(1582, 10, 10)).is_ok());
        assert!(Julian.key(&CivilTime::date(1582, 10, 10)).is_ok());
        assert!(matches!(Standard.key(&CivilTime::date(i64::MAX, 1, 1)), Err(TimeError::DateRange(_))));
        assert!(matches!(Day360.key(&CivilTime::date(i64::MIN, 1, 1)), Err(TimeError::DateRange(_))));
    }

    #[test]
    fn year_zero_rules() {
        use Calendar::*;
        // Standard and Julian: year -1 is followed by year 1.
        for c in [Standard, Julian] {
            let first = c.key(&CivilTime::date(1, 1, 1)).unwrap();
            assert_eq!(c.civil(Timestamp(first.0 - 1)), CivilTime::new(-1, 12, 31, 23, 59, 59, 999));
            assert!(!c.has_year_zero());
            assert!(CfTime::with_calendar("days since 0000-01-01", c).is_err());
            assert!(c.parse_user_time("0000-01-01").is_err());
        }
        // The others have a year 0.
        for c in [ProlepticGregorian, NoLeap, AllLeap, Day360, None] {
            let first = c.key(&CivilTime::date(1, 1, 1)).unwrap();
            assert_eq!(c.civil(Timestamp(first.0 - 1)).year, 0);
            assert!(c.has_year_zero());
            assert!(CfTime::with_calendar("days since 0000-01-01", c).is_ok());
        }
    }

    #[test]
    fn text_forms() {
        use Calendar::*;
        let cases = [
            (
                Standard,
                CivilTime::new(2010, 1, 15, 12, 30, 0, 250),
                "2010-01-15T12:30:00.250Z",
                "2010-01-15T12-30-00.250",
            ),
            (ProlepticGregorian, CivilTime::date(0, 2, 29), "0000-02-29T00:00:00.000Z", "0000-02-29T00-00-00.000"),
            (Standard, CivilTime::date(-44, 3, 15), "-0044-03-15T00:00:00.000Z", "-0044-03-15T00-00-00.000"),
            (Julian, CivilTime::date(1582, 10, 10), "1582-10-10T00:00:00.000", "1582-10-10T00-00-00.000"),
            (
                NoLeap,
                CivilTime::new(1850, 12, 31, 23, 59, 59, 999),
                "1850-12-31T23:59:59.999",
                "1850-12-31T23-59-59.999",
            ),
            (AllLeap, CivilTime::date(2001, 2, 29), "2001-02-29T00:00:00.000", "2001-02-29T00-00-00.000"),
            (Day360, CivilTime::date(2001, 2, 30), "2001-02-30T00:00:00.000", "2001-02-30T00-00-00.000"),
            (Day360, CivilTime::date(-12345, 6, 7), "-12345-06-07T00:00:00.000", "-12345-06-07T00-00-00.000"),
            (None, CivilTime::date(12345, 6, 7), "+12345-06-07T00:00:00.000", "+12345-06-07T00-00-00.000"),
        ];
        for (c, civil, iso, dir) in cases {
            let t = c.key(&civil).unwrap();
            assert_eq!(c.iso(t), iso);
            assert_eq!(c.slice_dir(t), dir);
            assert_eq!(c.parse_slice_dir(dir), Some(t), "{dir}");
            assert_eq!(c.parse_user_time(iso), Ok(t), "{iso}");
        }
    }

    #[test]
    fn slice_dirs_refused() {
        use Calendar::*;
        let refused = [
            (Standard, "static"),
            (Standard, ""),
            (Standard, "2010-01-15T12-30-00"),
            (Standard, "2010-01-15T12:30:00.000"),
            (Standard, "2010-1-15T12-30-00.000"),
            (Standard, "10-01-15T12-30-00.000"),
            (Standard, "+2010-01-15T12-30-00.000"),
            (Standard, "-0000-01-15T12-30-00.000"),
            (Standard, "02010-01-15T12-30-00.000"),
            (Standard, " 2010-01-15T12-30-00.000"),
            (Standard, "2010-01-15T12-30-00.000 "),
            (Standard, "2010-01-15t12-30-00.000"),
            (Standard, "2010-02-30T00-00-00.000"),
            (Standard, "1582-10-10T00-00-00.000"),
            (Standard, "0000-01-01T00-00-00.000"),
            (Standard, "2010-01-15T24-00-00.000"),
            (Standard, "99999999999999999999-01-15T00-00-00.000"),
            (Standard, "--2010-01-15T00-00-00.000"),
            (Standard, "2010-01-15T00-00-00.0é0"),
            (Standard, "é2010-01-15T00-00-00.000"),
            (NoLeap, "2000-02-29T00-00-00.000"),
            (Day360, "2000-01-31T00-00-00.000"),
        ];
        for (c, s) in refused {
            assert_eq!(c.parse_slice_dir(s), Option::None, "{c} {s:?}");
        }
        assert!(Day360.parse_slice_dir("2000-02-30T00-00-00.000").is_some());
        assert!(ProlepticGregorian.parse_slice_dir("0000-01-01T00-00-00.000").is_some());
    }

    #[test]
    fn user_times_in_calendars() {
        use Calendar::*;
        let cases = [
            (Day360, "2001-02-30", CivilTime::date(2001, 2, 30)),
            (Day360, "2001-02-30T12:00", CivilTime::new(2001, 2, 30, 12, 0, 0, 0)),
            (Day360, "2001-02-30T12:00:00", CivilTime::new(2001, 2, 30, 12, 0, 0, 0)),
            (Day360, "2001-02-30 12:00:00.5", CivilTime::new(2001, 2, 30, 12, 0, 0, 500)),
            (Day360, "2001-02-30T12:00:00Z", CivilTime::new(2001, 2, 30, 12, 0, 0, 0)),
            (Day360, "2001-02-30t12:00:00z", CivilTime::new(2001, 2, 30, 12, 0, 0, 0)),
            (Day360, "2001-03-01T01:00:00+02:00", CivilTime::new(2001, 2, 30, 23, 0, 0, 0)),
            (NoLeap, "2001-03-01T01:00:00+02:00", CivilTime::new(2001, 2, 28, 23, 0, 0, 0)),
            (AllLeap, "2001-03-01T01:00:00+02:00", CivilTime::new(2001, 2, 29, 23, 0, 0, 0)),
            (Standard, "2010-01-15T12:00:00-0530", CivilTime::new(2010, 1, 15, 17, 30, 0, 0)),
            (Standard, "2010-01-15 12:00", CivilTime::new(2010, 1, 15, 12, 0, 0, 0)),
            (Standard, "  2010-01-15T12:00:00.123456789Z ", CivilTime::new(2010, 1, 15, 12, 0, 0, 123)),
            (Standard, "2010-1-5", CivilTime::date(2010, 1, 5)),
            (Standard, "-0044-03-15", CivilTime::date(-44, 3, 15)),
            (Julian, "1582-10-10", CivilTime::date(1582, 10, 10)),
        ];
        for (c, text, civil) in cases {
            assert_eq!(c.parse_user_time(text).map(|t| c.civil(t)), Ok(civil), "{c} {text}");
        }
        let refused = [
            (Standard, "2001-02-30"),
            (NoLeap, "2000-02-29"),
            (Standard, "1582-10-10"),
            (Standard, "15/01/2010"),
            (Standard, "2010"),
            (Standard, "2010-01-15T"),
            (Standard, "2010-01-15T12:00:00+25:00"),
            (Standard, "2010-01-15T12:00:00 +02:00 x"),
            (Standard, "2010-01-15T12:00:00."),
            (Standard, "2010-001-15"),
            (Standard, "2010-01-15T25:00"),
            (Standard, "2010-01-15T12:00:00 utc+1"),
            (Standard, "tomorrow"),
            (Standard, ""),
            (Standard, "２０１０-01-15"),
        ];
        for (c, text) in refused {
            assert!(c.parse_user_time(text).is_err(), "{c} {text:?}");
        }
        assert!(matches!(Standard.parse_user_time("15/01/2010"), Err(TimeError::Iso(_))));
        assert_eq!(
            NoLeap.parse_user_time("2001-02-29").unwrap_err().to_string(),
            "2001-02-29 is not a date in the noleap calendar (February 2001 has 28 days)"
        );
    }

    // -- CF units -------------------------------------------------------------

    #[test]
    fn reference_forms() {
        let cases = [
            ("days since 2000-01-01", "2000-01-01T00:00:00.000Z"),
            ("days since 2000-1-1 0:0:0", "2000-01-01T00:00:00.000Z"),
            ("days since 1-1-1 00:00:0.0", "0001-01-01T00:00:00.000Z"),
            ("days since 1970-01-01T00:00:00Z", "1970-01-01T00:00:00.000Z"),
            ("days since 1900-01-01 00:00:00.0 UTC", "1900-01-01T00:00:00.000Z"),
            ("days since 2000-01-01 00:00:00 +00:00", "2000-01-01T00:00:00.000Z"),
            ("days since 2000-01-01 00:00:00 00:00", "2000-01-01T00:00:00.000Z"),
            ("days since 2000-01-01 00:00:00 +1:00", "1999-12-31T23:00:00.000Z"),
            ("days since 2000-01-01 00:00:00 -05:30", "2000-01-01T05:30:00.000Z"),
            ("days since 2000-01-01 00:00:00 +0100", "1999-12-31T23:00:00.000Z"),
            ("days since 2000-01-01 00:00:00 +01", "1999-12-31T23:00:00.000Z"),
            ("days since 2000-01-01T00:00:00+01:00", "1999-12-31T23:00:00.000Z"),
            ("days since 2000-01-01T00:00:00-01:00", "2000-01-01T01:00:00.000Z"),
            ("days since 2000-01-01 00:00:00 -6", "2000-01-01T06:00:00.000Z"),
            ("days since 2000-01-01 12", "2000-01-01T12:00:00.000Z"),
            ("days since 2000-01-01 12:30", "2000-01-01T12:30:00.000Z"),
            ("days since 2000-01", "2000-01-01T00:00:00.000Z"),
            ("days since 2000-01-01 00:00:00.1239", "2000-01-01T00:00:00.123Z"),
            ("days  since  2000-01-01  ", "2000-01-01T00:00:00.000Z"),
            ("DAYS SINCE 2000-01-01T00:00:00Z", "2000-01-01T00:00:00.000Z"),
            ("days since -100-01-01", "-0100-01-01T00:00:00.000Z"),
            ("days since 1582-10-04", "1582-10-04T00:00:00.000Z"),
        ];
        for (units, iso) in cases {
            let cf = CfTime::parse(units, None).unwrap_or_else(|e| panic!("{units}: {e}"));
            assert_eq!(cf.epoch.iso(), iso, "{units}");
        }
        let refused = [
            "days since 2000",
            "days since 2000-01-01 00:00:00 +25:00",
            "days since 2000-01-01 00:00:00 junk",
            "days since 2000-01-01 00:00:00 05:00 06:00",
            "days since 2000/01/01",
            "days since 1582-10-10",
            "days since 2001-02-29",
            "days since 0000-01-01",
        ];
        for units in refused {
            assert!(CfTime::parse(units, None).is_err(), "{units}");
        }
    }

    #[test]
    fn references_are_read_in_their_calendar() {
        assert!(CfTime::parse("days since 2000-02-30", Some("360_day")).is_ok());
        assert!(CfTime::parse("days since 2000-02-30", Some("standard")).is_err());
        assert!(CfTime::parse("days since 2001-02-29", Some("all_leap")).is_ok());
        assert!(CfTime::parse("days since 2000-02-29", Some("noleap")).is_err());
        assert!(CfTime::parse("days since 1582-10-10", Some("julian")).is_ok());
        let e = CfTime::parse("days since 2001-02-29", Some("noleap")).unwrap_err();
        assert!(e.to_string().starts_with("2001-02-29 is not a date in the noleap calendar"), "{e}");
        let cf = CfTime::parse("hours since 2000-03-01 00:00:00 +01:00", Some("360_day")).unwrap();
        assert_eq!(cf.calendar().iso(cf.epoch), "2000-02-30T23:00:00.000");
        assert_eq!(cf.calendar(), Calendar::Day360);
        assert_eq!(
            CfTime::parse("days since 2000-01-01", Some("365_day")),
            CfTime::with_calendar("days since 2000-01-01", Calendar::NoLeap)
        );
    }

    #[test]
    fn unit_spellings() {
        let cases = [
            (["microseconds", "microsecond", "microsecs", "microsec", "usec", "usecs", "us"].as_slice(), 0.001),
            (&["milliseconds", "millisecond", "millisecs", "millisec", "msecs", "msec", "ms"], 1.0),
            (&["seconds", "second", "secs", "sec", "s"], 1e3),
            (&["minutes", "minute", "mins", "min"], 6e4),
            (&["hours", "hour", "hrs", "hr", "h"], 3.6e6),
            (&["days", "day", "d"], 8.64e7),
            (&["weeks", "week"], 6.048e8),
            (&["common_years", "common_year"], 365.0 * 8.64e7),
        ];
        for (spellings, ms) in cases {
            for unit in spellings {
                for c in Calendar::ALL {
                    let cf = CfTime::with_calendar(&format!("{unit} since 2000-01-01"), c).unwrap();
                    assert_eq!(cf.unit_ms, ms, "{unit} {c}");
                }
            }
        }
    }

    #[test]
    fn months_and_years() {
        // 360_day: a month is 30 days, a year 360 days (cftime).
        assert_eq!(civil_of("months since 2000-01-01", "360_day", 1.5), CivilTime::date(2000, 2, 16));
        assert_eq!(civil_of("month since 2000-01-01", "360_day", 13.0), CivilTime::date(2001, 2, 1));
        assert_eq!(civil_of("years since 2000-01-01", "360_day", 1.0), CivilTime::date(2001, 1, 1));
        assert_eq!(civil_of("yr since 2000-02-30", "360_day", -2.5), CivilTime::date(1997, 8, 30));
        // Elsewhere UDUNITS: year = 365.242198781 days, month = year / 12.
        assert_eq!(civil_of("months since 2000-01-01", "noleap", 1.0), CivilTime::new(2000, 1, 31, 10, 29, 3, 831));
        assert_eq!(civil_of("years since 2000-01-01", "noleap", 1.0), CivilTime::new(2001, 1, 1, 5, 48, 45, 975));
        assert_eq!(civil_of("year since 2000-01-01", "standard", 1.0), CivilTime::new(2000, 12, 31, 5, 48, 45, 975));
        assert_eq!(civil_of("yrs since 2000-01-01", "all_leap", 1.0), CivilTime::new(2000, 12, 31, 5, 48, 45, 975));
        assert_eq!(civil_of("months since 2000-01-01", "julian", 12.0), CivilTime::new(2000, 12, 31, 5, 48, 45, 975));
        assert_eq!(civil_of("common_years since 2000-01-01", "noleap", 3.0), CivilTime::date(2003, 1, 1));
        assert_eq!(civil_of("common_years since 2000-01-01", "standard", 1.0), CivilTime::date(2000, 12, 31));
        let month = CfTime::parse("months since 2000-01-01", Some("gregorian")).unwrap().unit_ms;
        assert!((month - 365.242198781 / 12.0 * 8.64e7).abs() < 1e-3);
    }

    // cftime.num2date results, produced once with cftime 1.6.6.1 by
    //   python3 -W ignore -c "import cftime; from cases import CASES; [print((u, c, v, (d.year, d.month, d.day, d.hour, d.minute, d.second, d.microsecond // 1000))) for u, c, v in CASES for d in [cftime.num2date(v, u, calendar=c)]]"
    // where CASES is the list of (units, calendar, value) in the first three
    // columns below.
    /// (year, month, day, hour, minute, second, millisecond)
    type Fields = (i64, u32, u32, u32, u32, u32, u32);
    const CFTIME: &[(&str, &str, f64, Fields)] = &[
        ("hours since 1-1-1 00:00:0.0", "standard", 0.0, (1, 1, 1, 0, 0, 0, 0)),
        ("hours since 1-1-1 00:00:0.0", "standard", 13865688.0, (1582, 10, 15, 0, 0, 0, 0)),
        ("hours since 1-1-1 00:00:0.0", "standard", 13865712.0, (1582, 10, 16, 0, 0, 0, 0)),
        ("hours since 1-1-1 00:00:0.0", "standard", 17522904.5, (2000, 1, 1, 0, 30, 0, 0)),
        ("hours since 1-1-1 00:00:0.0", "standard", -36.25, (-1, 12, 30, 11, 45, 0, 0)),
        ("days since 1582-10-04", "standard", 0.0, (1582, 10, 4, 0, 0, 0, 0)),
        ("days since 1582-10-04", "standard", 1.0, (1582, 10, 15, 0, 0, 0, 0)),
        ("days since 1582-10-04", "standard", 0.75, (1582, 10, 4, 18, 0, 0, 0)),
        ("days since 1582-10-15", "standard", -1.0, (1582, 10, 4, 0, 0, 0, 0)),
        ("days since 1582-10-15", "standard", -3653.5, (1572, 10, 3, 12, 0, 0, 0)),
        ("days since 1970-01-01", "standard", -141428.0, (1582, 10, 4, 0, 0, 0, 0)),
        ("days since 1970-01-01", "standard", -141427.0, (1582, 10, 15, 0, 0, 0, 0)),
        ("days since 1970-01-01", "standard", 18262.25, (2020, 1, 1, 6, 0, 0, 0)),
        ("seconds since 1970-01-01 00:00:00", "standard", -62135596800.0, (1, 1, 3, 0, 0, 0, 0)),
        ("seconds since 1970-01-01 00:00:00", "standard", 1000000000.5, (2001, 9, 9, 1, 46, 40, 500)),
        ("days since 0001-01-01", "gregorian", -1.0, (-1, 12, 31, 0, 0, 0, 0)),
        ("days since 0001-01-01", "standard", -366.0, (-1, 1, 1, 0, 0, 0, 0)),
        ("days since 0001-01-01", "standard", -367.0, (-2, 12, 31, 0, 0, 0, 0)),
        ("days since 0001-01-01", "standard", -730000.0, (-1999, 5, 16, 0, 0, 0, 0)),
        ("days since -4713-01-01 12:00", "standard", 2451545.0, (2000, 1, 1, 12, 0, 0, 0)),
        ("days since 1500-02-28", "standard", 1.0, (1500, 2, 29, 0, 0, 0, 0)),
        ("minutes since 1900-01-01 00:00:00.0 UTC", "standard", 60.5, (1900, 1, 1, 1, 0, 30, 0)),
        ("hours since 2000-01-01 00:00:00 +0100", "standard", 1.0, (2000, 1, 1, 0, 0, 0, 0)),
        ("hours since 2000-01-01T00:00:00-05:30", "gregorian", 0.0, (2000, 1, 1, 5, 30, 0, 0)),
        ("milliseconds since 1582-10-14 23:59:59", "proleptic_gregorian", 1500.0, (1582, 10, 15, 0, 0, 0, 500)),
        ("days since 0001-01-01", "julian", -1.0, (-1, 12, 31, 0, 0, 0, 0)),
        ("days since 0001-01-01", "julian", 0.0, (1, 1, 1, 0, 0, 0, 0)),
        ("days since 0001-01-01", "julian", 365.0, (2, 1, 1, 0, 0, 0, 0)),
        ("days since 0001-01-01", "julian", -366.0, (-1, 1, 1, 0, 0, 0, 0)),
        ("days since 0001-01-01", "julian", 1000000.0, (2738, 11, 8, 0, 0, 0, 0)),
        ("days since 0001-01-01", "julian", -1000000.0, (-2738, 2, 25, 0, 0, 0, 0)),
        ("hours since 1582-10-10", "julian", 12.0, (1582, 10, 10, 12, 0, 0, 0)),
        ("days since 1970-01-01", "julian", 0.0, (1970, 1, 1, 0, 0, 0, 0)),
        ("days since 1970-01-01", "julian", 10957.125, (2000, 1, 1, 3, 0, 0, 0)),
        ("days since -0500-03-01", "julian", -1.0, (-500, 2, 28, 0, 0, 0, 0)),
        ("days since 1900-02-28", "julian", 1.0, (1900, 2, 29, 0, 0, 0, 0)),
        ("days since 0001-01-01", "proleptic_gregorian", -1.0, (0, 12, 31, 0, 0, 0, 0)),
        ("days since 0001-01-01", "proleptic_gregorian", -366.0, (0, 1, 1, 0, 0, 0, 0)),
        ("days since 0001-01-01", "proleptic_gregorian", -367.0, (-1, 12, 31, 0, 0, 0, 0)),
        ("days since 1582-10-10", "proleptic_gregorian", 5.0, (1582, 10, 15, 0, 0, 0, 0)),
        ("seconds since 1970-01-01", "proleptic_gregorian", -62135596800.0, (1, 1, 1, 0, 0, 0, 0)),
        ("seconds since 1970-01-01", "proleptic_gregorian", 253402300799.0, (9999, 12, 31, 23, 59, 59, 0)),
        ("days since 0000-03-01", "proleptic_gregorian", -1.0, (0, 2, 29, 0, 0, 0, 0)),
        ("days since -1000-01-01", "proleptic_gregorian", 365.25, (-999, 1, 1, 6, 0, 0, 0)),
        ("days since 1900-02-28", "proleptic_gregorian", 1.0, (1900, 3, 1, 0, 0, 0, 0)),
        ("days since 1850-01-01", "noleap", 0.0, (1850, 1, 1, 0, 0, 0, 0)),
        ("days since 1850-01-01", "noleap", 59.0, (1850, 3, 1, 0, 0, 0, 0)),
        ("days since 1850-01-01", "noleap", 58.5, (1850, 2, 28, 12, 0, 0, 0)),
        ("days since 1850-01-01", "noleap", 365.0, (1851, 1, 1, 0, 0, 0, 0)),
        ("days since 1850-01-01", "noleap", 73000.0, (2050, 1, 1, 0, 0, 0, 0)),
        ("days since 1850-01-01", "noleap", -1.0, (1849, 12, 31, 0, 0, 0, 0)),
        ("days since 1850-01-01", "365_day", 54807.875, (2000, 2, 27, 21, 0, 0, 0)),
        ("days since 0000-01-01", "noleap", -1.0, (-1, 12, 31, 0, 0, 0, 0)),
        ("hours since 2000-02-28", "365_day", 24.0, (2000, 3, 1, 0, 0, 0, 0)),
        ("common_years since 2000-01-01", "noleap", 1.5, (2001, 7, 2, 12, 0, 0, 0)),
        ("common_years since 2000-01-01", "noleap", -2.0, (1998, 1, 1, 0, 0, 0, 0)),
        ("minutes since -0100-12-31 23:00", "noleap", 90.0, (-99, 1, 1, 0, 30, 0, 0)),
        ("seconds since 1970-01-01", "all_leap", 5097600.0, (1970, 2, 29, 0, 0, 0, 0)),
        ("seconds since 1970-01-01", "all_leap", 31622400.0, (1971, 1, 1, 0, 0, 0, 0)),
        ("seconds since 1970-01-01", "all_leap", -86400.0, (1969, 12, 31, 0, 0, 0, 0)),
        ("seconds since 1970-01-01", "all_leap", 1000000000.0, (2001, 8, 16, 1, 46, 40, 0)),
        ("days since 1900-02-29", "366_day", 0.0, (1900, 2, 29, 0, 0, 0, 0)),
        ("days since 1900-02-29", "366_day", 1.0, (1900, 3, 1, 0, 0, 0, 0)),
        ("days since 0001-01-01", "all_leap", -1.0, (0, 12, 31, 0, 0, 0, 0)),
        ("days since 0001-01-01", "all_leap", -367.0, (-1, 12, 31, 0, 0, 0, 0)),
        ("months since 2000-01-01", "360_day", 0.0, (2000, 1, 1, 0, 0, 0, 0)),
        ("months since 2000-01-01", "360_day", 1.0, (2000, 2, 1, 0, 0, 0, 0)),
        ("months since 2000-01-01", "360_day", 1.5, (2000, 2, 16, 0, 0, 0, 0)),
        ("months since 2000-01-01", "360_day", 13.0, (2001, 2, 1, 0, 0, 0, 0)),
        ("months since 2000-01-01", "360_day", -1.0, (1999, 12, 1, 0, 0, 0, 0)),
        ("months since 2000-01-01", "360_day", -25.0, (1997, 12, 1, 0, 0, 0, 0)),
        ("months since 2000-01-01", "360_day", 11.5, (2000, 12, 16, 0, 0, 0, 0)),
        ("days since 2000-02-30", "360_day", 0.0, (2000, 2, 30, 0, 0, 0, 0)),
        ("days since 2000-02-30", "360_day", 1.0, (2000, 3, 1, 0, 0, 0, 0)),
        ("days since 2000-02-30", "360_day", 360.0, (2001, 2, 30, 0, 0, 0, 0)),
        ("days since 0001-01-01", "360_day", -1.0, (0, 12, 30, 0, 0, 0, 0)),
        ("days since 0001-01-01", "360_day", -361.0, (-1, 12, 30, 0, 0, 0, 0)),
        ("hours since 1850-01-01", "360_day", 17292.0, (1852, 1, 1, 12, 0, 0, 0)),
        ("milliseconds since 2000-01-01", "360_day", 2592000001.0, (2000, 2, 1, 0, 0, 0, 1)),
        ("days since 1850-01-01 00:00:00", "360_day", 54719.25, (2001, 12, 30, 6, 0, 0, 0)),
    ];

    #[test]
    fn agrees_with_cftime() {
        assert!(CFTIME.len() >= 60);
        for &(units, calendar, value, (y, mo, d, h, mi, s, ms)) in CFTIME {
            let expected = CivilTime::new(y, mo, d, h, mi, s, ms);
            assert_eq!(civil_of(units, calendar, value), expected, "{units} ({calendar}) {value}");
            // And back: the value is exact in these units.
            let cf = CfTime::parse(units, Some(calendar)).unwrap();
            let t = cf.calendar().key(&expected).unwrap();
            assert_eq!(cf.exact_value(t), Some(value), "{units} ({calendar}) {value}");
        }
    }

    #[test]
    fn values_round_trip_exactly() {
        let cases = [
            ("days since 2000-01-01", 15.5),
            ("hours since 1900-01-01", 744.0),
            ("days since 1850-01-01", 0.25),
            ("days since 1850-01-01", 0.1),
            ("seconds since 1970-01-01", 1.001),
            ("months since 2000-01-01", 1.5),
        ];
        for (units, v) in cases {
            for c in Calendar::ALL {
                let cf = CfTime::with_calendar(units, c).unwrap();
                if units.starts_with("months") && c != Calendar::Day360 {
                    continue;
                }
                let t = cf.to_timestamp(v).unwrap();
                assert_eq!(cf.to_value(t).to_bits(), v.to_bits(), "{units} {c} {v}");
                assert_eq!(cf.exact_value(t), Some(v));
            }
        }
        // A key that is no whole number of ... UDUNITS months.
        let cf = CfTime::parse("months since 2000-01-01", None).unwrap();
        let t = cf.to_timestamp(1.0).unwrap();
        assert!((cf.to_value(t) - 1.0).abs() < 1e-9);
        let cf = CfTime::parse("days since 2000-01-01", None).unwrap();
        assert_eq!(cf.exact_value(Timestamp(i64::MAX)), Option::None);
        assert!(cf.to_value(Timestamp(i64::MIN)).is_finite());
    }

    // -- Properties -----------------------------------------------------------

    fn any_calendar() -> impl Strategy<Value = Calendar> {
        proptest::sample::select(Calendar::ALL.to_vec())
    }

    /// About ±12 000 years around 1970.
    const WIDE: i64 = 12_000 * 366 * DAY;

    proptest! {
        #[test]
        fn key_inverts_civil(c in any_calendar(), t in -WIDE..WIDE) {
            prop_assert_eq!(c.key(&c.civil(Timestamp(t))), Ok(Timestamp(t)));
        }

        #[test]
        fn key_inverts_civil_everywhere(c in any_calendar(), t in any::<i64>()) {
            prop_assert_eq!(c.key(&c.civil(Timestamp(t))), Ok(Timestamp(t)));
        }

        #[test]
        fn civil_is_increasing(c in any_calendar(), t in -WIDE..WIDE, step in 1i64..(3 * DAY)) {
            prop_assert!(c.civil(Timestamp(t)) < c.civil(Timestamp(t + step)));
        }

        #[test]
        fn civil_inverts_key(
            c in any_calendar(),
            year in -12_000i64..12_000,
            month in 1u32..=12,
            day in 1u32..=31,
            ms in 0i64..DAY,
        ) {
            let civil = Calendar::ProlepticGregorian.civil(Timestamp(ms));
            let civil = CivilTime { year, month, day, ..civil };
            match c.key(&civil) {
                Ok(t) => prop_assert_eq!(c.civil(t), civil),
                Err(_) => prop_assert!(
                    c.days_in_month(year, month).is_none_or(|n| day > n)
                        || (c == Calendar::Standard && (year, month) == (1582, 10) && (5..=14).contains(&day))
                ),
            }
        }

        #[test]
        fn slice_dirs_round_trip_everywhere(c in any_calendar(), t in any::<i64>()) {
            let dir = c.slice_dir(Timestamp(t));
            prop_assert_eq!(c.parse_slice_dir(&dir), Some(Timestamp(t)));
            prop_assert_eq!(c.parse_user_time(&c.iso(Timestamp(t))), Ok(Timestamp(t)));
        }

        #[test]
        fn slice_dirs_round_trip_wide(c in any_calendar(), t in -WIDE..WIDE) {
            let dir = c.slice_dir(Timestamp(t));
            prop_assert_eq!(c.parse_slice_dir(&dir), Some(Timestamp(t)));
        }

        #[test]
        fn standard_is_chrono_after_1582(t in -12_219_292_800_000i64..8_000_000_000_000_000) {
            let chrono = Timestamp(t).to_datetime().unwrap();
            prop_assert_eq!(Timestamp(t).iso(), chrono.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string());
            prop_assert_eq!(format_slice_dir(Timestamp(t)), chrono.format("%Y-%m-%dT%H-%M-%S%.3f").to_string());
        }

        #[test]
        fn proleptic_gregorian_is_chrono(t in -8_000_000_000_000_000i64..8_000_000_000_000_000) {
            let chrono = Timestamp(t).to_datetime().unwrap();
            let c = Calendar::ProlepticGregorian;
            prop_assert_eq!(c.iso(Timestamp(t)), chrono.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string());
        }

        #[test]
        fn eighths_round_trip(
            c in any_calendar(),
            // Eighths of a unit over about ±3000 years.
            (unit, eighths) in proptest::sample::select(vec![("days", 8_000_000i64), ("hours", 200_000_000), ("seconds", 800_000_000_000)]),
            reference in proptest::sample::select(vec!["1850-01-01", "0001-01-01 00:00:00", "2000-01-01T06:00:00Z", "1582-10-04"]),
            k in any::<i64>(),
        ) {
            let cf = CfTime::with_calendar(&format!("{unit} since {reference}"), c).unwrap();
            let v = (k % eighths) as f64 / 8.0;
            let t = cf.to_timestamp(v).unwrap();
            prop_assert_eq!(cf.to_value(t).to_bits(), v.to_bits());
            prop_assert_eq!(cf.exact_value(t), Some(v));
        }

        #[test]
        fn text_never_panics(c in any_calendar(), s in "\\PC{0,40}") {
            let _ = c.parse_user_time(&s);
            let _ = c.parse_slice_dir(&s);
            let _ = CfTime::with_calendar(&format!("days since {s}"), c);
            let _ = CfTime::with_calendar(&s, c);
            let _ = Calendar::parse(Some(&s));
        }

        #[test]
        fn written_like_never_panics(c in any_calendar(), s in "[-+]?[0-9]{1,20}-[0-9]{1,3}(-[0-9]{1,3})?([Tt ][0-9:.]{0,12})?( ?[-+zZ0-9:]{0,7})?") {
            let _ = c.parse_user_time(&s);
            let _ = c.parse_slice_dir(&s);
            let _ = CfTime::with_calendar(&format!("days since {s}"), c).map(|cf| cf.to_timestamp(1e9));
        }
    }
}
