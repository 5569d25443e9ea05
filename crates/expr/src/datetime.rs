//! Dates and times: the text forms Microsoft documents (`M/d/yyyy h:mm:ss tt`), lenient
//! date parsing for `CDate`, .NET custom format strings for `FormatDateTime`, Active
//! Directory's FILETIME numbers, and `DateAdd`/`DateDiff` intervals.
//!
//! The .NET custom format strings are in `datetime/custom_format.rs`.

use jiff::civil::DateTime;
use jiff::tz::{Offset, TimeZone};
use jiff::{Span, Timestamp};

mod custom_format;

pub use custom_format::{apply_styles, format, parse_exact};

/// Seconds between 1601-01-01 (the FILETIME epoch) and 1970-01-01.
const FILETIME_EPOCH_OFFSET_SECONDS: i128 = 11_644_473_600;
const TICKS_PER_SECOND: i128 = 10_000_000;

const MONTHS: [&str; 12] = [
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
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

fn utc(ts: Timestamp) -> DateTime {
    ts.to_zoned(TimeZone::UTC).datetime()
}

/// `M/d/yyyy h:mm:ss tt` in UTC, e.g. `3/16/2020 7:00:00 AM`.
pub fn display(ts: Timestamp) -> String {
    let dt = utc(ts);
    let (h12, tt) = twelve_hour(dt.hour());
    format!(
        "{}/{}/{} {}:{:02}:{:02} {}",
        dt.month(),
        dt.day(),
        dt.year(),
        h12,
        dt.minute(),
        dt.second(),
        tt
    )
}

fn twelve_hour(h: i8) -> (i8, &'static str) {
    let h12 = if h % 12 == 0 { 12 } else { h % 12 };
    (h12, if h < 12 { "AM" } else { "PM" })
}

/// A date-time read from text: the wall-clock time and the offset, when the text had one.
#[derive(Debug, Clone, Copy)]
pub struct Parsed {
    pub dt: DateTime,
    pub offset: Option<Offset>,
}

impl Parsed {
    /// The instant; a time without an offset is taken as UTC.
    pub fn timestamp(self) -> Result<Timestamp, String> {
        let tz = TimeZone::fixed(self.offset.unwrap_or(Offset::UTC));
        tz.to_timestamp(self.dt).map_err(|e| e.to_string())
    }

    pub fn from_timestamp(ts: Timestamp) -> Parsed {
        Parsed {
            dt: utc(ts),
            offset: Some(Offset::UTC),
        }
    }
}

/// Small scanner over text being parsed.
struct Scan<'a> {
    s: &'a str,
    pos: usize,
}

impl Scan<'_> {
    fn rest(&self) -> &str {
        &self.s[self.pos..]
    }
    fn done(&self) -> bool {
        self.pos >= self.s.len()
    }
    fn eat(&mut self, c: char) -> bool {
        if self.rest().starts_with(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }
    fn eat_ci(&mut self, word: &str) -> bool {
        let r = self.rest();
        if r.len() >= word.len()
            && r.is_char_boundary(word.len())
            && r[..word.len()].eq_ignore_ascii_case(word)
        {
            self.pos += word.len();
            true
        } else {
            false
        }
    }
    /// Between `min` and `max` ASCII digits.
    fn digits(&mut self, min: usize, max: usize) -> Option<(i64, usize)> {
        let n = self
            .rest()
            .bytes()
            .take(max)
            .take_while(u8::is_ascii_digit)
            .count();
        if n < min {
            return None;
        }
        let v = self.rest()[..n].parse().ok()?;
        self.pos += n;
        Some((v, n))
    }
    fn skip_spaces(&mut self) {
        while self.eat(' ') {}
    }
    /// `Z`, `±hh`, `±hhmm` or `±hh:mm`.
    fn offset(&mut self) -> Option<Offset> {
        if self.eat('Z') || self.eat('z') {
            return Some(Offset::UTC);
        }
        let save = self.pos;
        let sign = if self.eat('+') {
            1
        } else if self.eat('-') {
            -1
        } else {
            return None;
        };
        let Some((h, _)) = self.digits(1, 2) else {
            self.pos = save;
            return None;
        };
        self.eat(':');
        let m = self.digits(2, 2).map_or(0, |(m, _)| m);
        if h > 14 || m > 59 {
            self.pos = save;
            return None;
        }
        Offset::from_seconds((sign * (h * 3600 + m * 60)) as i32).ok()
    }
}

fn civil(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64, ns: i64) -> Option<DateTime> {
    DateTime::new(
        i16::try_from(y).ok()?,
        i8::try_from(mo).ok()?,
        i8::try_from(d).ok()?,
        i8::try_from(h).ok()?,
        i8::try_from(mi).ok()?,
        i8::try_from(s).ok()?,
        i32::try_from(ns).ok()?,
    )
    .ok()
}

/// Read a date-time the way `CDate` does: ISO 8601 dates with or without a time and an
/// offset (`2020-03-16-07:00`, `2021-06-30+08:00`, `2009-06-15T01:45:30-07:00`,
/// `2021-08-24`, `2020-12-31 23:59:59-08:00`, `…Z`, fractional seconds) and the US form
/// Microsoft prints (`8/25/2021 5:41:18 PM`). No offset means UTC.
pub fn parse_lenient(text: &str) -> Result<Timestamp, String> {
    let fail = || {
        format!(
            "\"{text}\" is not a date-time: expected a form like 2021-06-30, 2009-06-15T01:45:30-07:00 or 8/25/2021 5:41:18 PM"
        )
    };
    let mut sc = Scan {
        s: text.trim(),
        pos: 0,
    };
    let (y, mo, d);
    let (first, n) = sc.digits(1, 4).ok_or_else(fail)?;
    if n == 4 && sc.eat('-') {
        y = first;
        mo = sc.digits(1, 2).ok_or_else(fail)?.0;
        if !sc.eat('-') {
            return Err(fail());
        }
        d = sc.digits(1, 2).ok_or_else(fail)?.0;
    } else if n <= 2 && sc.eat('/') {
        mo = first;
        d = sc.digits(1, 2).ok_or_else(fail)?.0;
        if !sc.eat('/') {
            return Err(fail());
        }
        y = sc.digits(4, 4).ok_or_else(fail)?.0;
    } else {
        return Err(fail());
    }
    let (mut h, mut mi, mut s, mut ns) = (0, 0, 0, 0);
    let save = sc.pos;
    if sc.eat('T') || sc.eat(' ') {
        sc.skip_spaces();
        if let Some((hh, _)) = sc.digits(1, 2) {
            h = hh;
            if !sc.eat(':') {
                return Err(fail());
            }
            mi = sc.digits(2, 2).ok_or_else(fail)?.0;
            if sc.eat(':') {
                s = sc.digits(2, 2).ok_or_else(fail)?.0;
                if sc.eat('.') {
                    let start = sc.pos;
                    let (f, len) = sc.digits(1, 9).ok_or_else(fail)?;
                    ns = f * 10_i64.pow(9 - len as u32);
                    while sc.rest().starts_with(|c: char| c.is_ascii_digit()) {
                        sc.pos += 1;
                    }
                    let _ = start;
                }
            }
            sc.skip_spaces();
            if sc.eat_ci("AM") {
                if !(1..=12).contains(&h) {
                    return Err(fail());
                }
                h %= 12;
            } else if sc.eat_ci("PM") {
                if !(1..=12).contains(&h) {
                    return Err(fail());
                }
                h = h % 12 + 12;
            }
        } else {
            sc.pos = save;
        }
    }
    sc.skip_spaces();
    let offset = sc.offset();
    sc.skip_spaces();
    if !sc.done() {
        return Err(fail());
    }
    let dt = civil(y, mo, d, h, mi, s, ns).ok_or_else(fail)?;
    Parsed { dt, offset }.timestamp().map_err(|_| fail())
}

/// FILETIME (100-nanosecond intervals since 1601-01-01 UTC) to a timestamp.
pub fn from_filetime(ticks: i64) -> Result<Timestamp, String> {
    let ticks = i128::from(ticks);
    let secs = ticks.div_euclid(TICKS_PER_SECOND) - FILETIME_EPOCH_OFFSET_SECONDS;
    let nanos = ticks.rem_euclid(TICKS_PER_SECOND) * 100;
    i64::try_from(secs)
        .ok()
        .and_then(|secs| Timestamp::new(secs, nanos as i32).ok())
        .ok_or_else(|| {
            format!("{ticks} is outside the supported date range (years -9999 to 9999); 9223372036854775807 and 0 mean \"never\" in accountExpires")
        })
}

/// A timestamp as FILETIME.
pub fn to_filetime(ts: Timestamp) -> Result<i64, String> {
    let ticks = (i128::from(ts.as_second()) + FILETIME_EPOCH_OFFSET_SECONDS) * TICKS_PER_SECOND
        + i128::from(ts.subsec_nanosecond()) / 100;
    i64::try_from(ticks)
        .ok()
        .filter(|t| *t >= 0)
        .ok_or_else(|| {
            format!(
                "{} is before 1601-01-01, which FILETIME can't represent",
                display(ts)
            )
        })
}

pub const INTERVALS: &str =
    "yyyy (year), m (month), d (day), ww (week), h (hour), n (minute), s (second)";

/// `DateAdd`: add `n` intervals; adding months keeps the day within the month (Jan 31 + 1
/// month = Feb 28/29).
pub fn add(interval: &str, n: i64, ts: Timestamp) -> Result<Timestamp, String> {
    let span = match interval {
        "yyyy" => Span::new().try_years(n),
        "m" => Span::new().try_months(n),
        "d" => Span::new().try_days(n),
        "ww" => Span::new().try_weeks(n),
        "h" => Span::new().try_hours(n),
        "n" => Span::new().try_minutes(n),
        "s" => Span::new().try_seconds(n),
        other => {
            return Err(format!(
                "unknown interval \"{other}\": expected one of {INTERVALS}"
            ));
        }
    }
    .map_err(|_| format!("{n} is too large an amount of \"{interval}\""))?;
    let out_of_range = |_| format!("the result of adding {n} \"{interval}\" is out of range");
    let dt = utc(ts).checked_add(span).map_err(out_of_range)?;
    TimeZone::UTC.to_timestamp(dt).map_err(out_of_range)
}

/// `DateDiff`: calendar years and months; whole days, hours, minutes and seconds (truncated);
/// weeks counted between the Sundays starting each date's week.
pub fn diff(interval: &str, a: Timestamp, b: Timestamp) -> Result<i64, String> {
    let (da, db) = (utc(a), utc(b));
    let seconds = b.as_second() - a.as_second();
    Ok(match interval {
        "yyyy" => i64::from(db.year()) - i64::from(da.year()),
        "m" => {
            (i64::from(db.year()) - i64::from(da.year())) * 12 + i64::from(db.month())
                - i64::from(da.month())
        }
        "d" => seconds / 86_400,
        "ww" => {
            let back = |dt: DateTime| i64::from(dt.weekday().to_sunday_zero_offset()) * 86_400;
            (seconds - back(db) + back(da)) / (7 * 86_400)
        }
        "h" => seconds / 3_600,
        "n" => seconds / 60,
        "s" => seconds,
        other => {
            return Err(format!(
                "unknown interval \"{other}\": expected one of {INTERVALS}"
            ));
        }
    })
}
