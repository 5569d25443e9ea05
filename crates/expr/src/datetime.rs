//! Dates and times: the text forms Microsoft documents (`M/d/yyyy h:mm:ss tt`), lenient
//! date parsing for `CDate`, .NET custom format strings for `FormatDateTime`, Active
//! Directory's FILETIME numbers, and `DateAdd`/`DateDiff` intervals.

use jiff::civil::{Date, DateTime};
use jiff::tz::{Offset, TimeZone};
use jiff::{Span, Timestamp};

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

/// One piece of a .NET custom date and time format string.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// A run of one pattern letter, e.g. `yyyy` is ('y', 4).
    Field(char, usize),
    Literal(String),
}

fn tokenize(format: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let chars: Vec<char> = format.chars().collect();
    let mut i = 0;
    let lit = |out: &mut Vec<Token>, s: String| match out.last_mut() {
        Some(Token::Literal(prev)) => prev.push_str(&s),
        _ => out.push(Token::Literal(s)),
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            'y' | 'M' | 'd' | 'H' | 'h' | 'm' | 's' | 'f' | 'F' | 't' | 'z' | 'K' | 'g' => {
                let n = chars[i..].iter().take_while(|&&x| x == c).count();
                out.push(Token::Field(c, n));
                i += n;
            }
            '\'' | '"' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&x| x == c)
                    .map_or(chars.len(), |p| i + 1 + p);
                lit(&mut out, chars[i + 1..end].iter().collect());
                i = end + 1;
            }
            '\\' => {
                if let Some(&next) = chars.get(i + 1) {
                    lit(&mut out, next.to_string());
                }
                i += 2;
            }
            '%' => i += 1,
            c => {
                lit(&mut out, c.to_string());
                i += 1;
            }
        }
    }
    out
}

/// Parse `text` with a .NET custom format (as `DateTime.ParseExact` does, with leading and
/// trailing blanks allowed). Parts the format lacks default to `today` / midnight.
pub fn parse_exact(text: &str, format: &str, today: Date) -> Result<Parsed, String> {
    let fail = |why: &str| format!("\"{text}\" does not match the format \"{format}\": {why}");
    let mut sc = Scan {
        s: text.trim(),
        pos: 0,
    };
    let (mut y, mut mo, mut d) = (
        i64::from(today.year()),
        i64::from(today.month()),
        i64::from(today.day()),
    );
    let (mut h, mut mi, mut s, mut ns) = (0i64, 0i64, 0i64, 0i64);
    let mut pm: Option<bool> = None;
    let mut offset = None;
    let mut has_date = false;
    for token in tokenize(format) {
        match token {
            Token::Literal(l) => {
                for c in l.chars() {
                    if c == ' ' {
                        sc.skip_spaces();
                    } else if !sc.eat(c) {
                        return Err(fail(&format!("expected `{c}` at position {}", sc.pos + 1)));
                    }
                }
            }
            Token::Field(c, n) => {
                let num = |sc: &mut Scan, min: usize, max: usize, what: &str| {
                    sc.digits(min, max).map(|(v, _)| v).ok_or_else(|| {
                        fail(&format!("expected the {what} at position {}", sc.pos + 1))
                    })
                };
                let fixed_or_loose = |n: usize| if n == 1 { (1, 2) } else { (2, 2) };
                match c {
                    'y' => {
                        has_date = true;
                        if n <= 2 {
                            let v = num(&mut sc, n.min(2), 2, "year")?;
                            y = if v < 50 { 2000 + v } else { 1900 + v };
                        } else {
                            y = num(&mut sc, 4, n.max(4), "year")?;
                        }
                    }
                    'M' if n >= 3 => {
                        has_date = true;
                        let found = MONTHS.iter().position(|m| {
                            if n == 3 {
                                sc.eat_ci(&m[..3])
                            } else {
                                sc.eat_ci(m)
                            }
                        });
                        mo = found
                            .map(|i| i as i64 + 1)
                            .ok_or_else(|| fail("expected a month name"))?;
                    }
                    'M' => {
                        has_date = true;
                        let (a, b) = fixed_or_loose(n);
                        mo = num(&mut sc, a, b, "month")?;
                    }
                    'd' if n >= 3 => {
                        let found = DAYS.iter().any(|day| {
                            if n == 3 {
                                sc.eat_ci(&day[..3])
                            } else {
                                sc.eat_ci(day)
                            }
                        });
                        if !found {
                            return Err(fail("expected a day name"));
                        }
                    }
                    'd' => {
                        has_date = true;
                        let (a, b) = fixed_or_loose(n);
                        d = num(&mut sc, a, b, "day")?;
                    }
                    'H' | 'h' => {
                        let (a, b) = fixed_or_loose(n);
                        h = num(&mut sc, a, b, "hour")?;
                    }
                    'm' => {
                        let (a, b) = fixed_or_loose(n);
                        mi = num(&mut sc, a, b, "minute")?;
                    }
                    's' => {
                        let (a, b) = fixed_or_loose(n);
                        s = num(&mut sc, a, b, "second")?;
                    }
                    'f' | 'F' => {
                        let n = n.min(9);
                        let min = if c == 'f' { n } else { 0 };
                        let start = sc.pos;
                        let v = sc.digits(min, n).map(|(v, _)| v);
                        let len = sc.pos - start;
                        match v {
                            Some(v) => ns = v * 10_i64.pow(9 - len as u32),
                            None if c == 'F' => {}
                            None => return Err(fail("expected fractional seconds")),
                        }
                    }
                    't' => {
                        let is_pm = if sc.eat_ci(if n == 1 { "A" } else { "AM" }) {
                            false
                        } else if sc.eat_ci(if n == 1 { "P" } else { "PM" }) {
                            true
                        } else {
                            return Err(fail("expected AM or PM"));
                        };
                        pm = Some(is_pm);
                    }
                    'z' | 'K' => match sc.offset() {
                        Some(o) => offset = Some(o),
                        None if c == 'K' => {}
                        None => return Err(fail("expected a UTC offset like -08:00")),
                    },
                    'g' => {
                        sc.eat_ci("A.D.");
                    }
                    _ => {}
                }
            }
        }
    }
    if !sc.done() {
        return Err(fail(&format!("unexpected \"{}\" at the end", sc.rest())));
    }
    if let Some(pm) = pm {
        if !(1..=12).contains(&h) {
            return Err(fail("a 12-hour clock hour must be 1 to 12"));
        }
        h = h % 12 + if pm { 12 } else { 0 };
    }
    let _ = has_date;
    let dt = civil(y, mo, d, h, mi, s, ns).ok_or_else(|| fail("not a valid date or time"))?;
    Ok(Parsed { dt, offset })
}

/// Format with a .NET custom format string (invariant culture).
pub fn format(p: Parsed, format: &str) -> String {
    let dt = p.dt;
    let mut out = String::new();
    for token in tokenize(format) {
        match token {
            Token::Literal(l) => out.push_str(&l),
            Token::Field(c, n) => {
                let pad = |v: i64, width: usize| format!("{v:0width$}");
                let text = match c {
                    'y' => {
                        let y = i64::from(dt.year());
                        match n {
                            1 => (y % 100).to_string(),
                            2 => pad(y % 100, 2),
                            n => pad(y, n),
                        }
                    }
                    'M' => match n {
                        1 => dt.month().to_string(),
                        2 => pad(i64::from(dt.month()), 2),
                        3 => MONTHS[dt.month() as usize - 1][..3].to_string(),
                        _ => MONTHS[dt.month() as usize - 1].to_string(),
                    },
                    'd' => {
                        let day = DAYS[dt.weekday().to_sunday_zero_offset() as usize];
                        match n {
                            1 => dt.day().to_string(),
                            2 => pad(i64::from(dt.day()), 2),
                            3 => day[..3].to_string(),
                            _ => day.to_string(),
                        }
                    }
                    'H' => pad(i64::from(dt.hour()), n.min(2)),
                    'h' => pad(i64::from(twelve_hour(dt.hour()).0), n.min(2)),
                    'm' => pad(i64::from(dt.minute()), n.min(2)),
                    's' => pad(i64::from(dt.second()), n.min(2)),
                    'f' | 'F' => {
                        let digits = format!("{:09}", dt.subsec_nanosecond());
                        let mut d = digits[..n.min(9)].to_string();
                        if c == 'F' {
                            while d.ends_with('0') {
                                d.pop();
                            }
                        }
                        d
                    }
                    't' => {
                        let tt = twelve_hour(dt.hour()).1;
                        if n == 1 {
                            tt[..1].to_string()
                        } else {
                            tt.to_string()
                        }
                    }
                    'z' | 'K' => {
                        let secs = p.offset.map_or(0, |o| o.seconds());
                        match (c, p.offset) {
                            ('K', None) => String::new(),
                            ('K', Some(o)) if o == Offset::UTC => "Z".to_string(),
                            _ => {
                                let sign = if secs < 0 { '-' } else { '+' };
                                let (hh, mm) = (secs.abs() / 3600, secs.abs() % 3600 / 60);
                                match (c, n) {
                                    ('z', 1) => format!("{sign}{hh}"),
                                    ('z', 2) => format!("{sign}{hh:02}"),
                                    _ => format!("{sign}{hh:02}:{mm:02}"),
                                }
                            }
                        }
                    }
                    'g' => "A.D.".to_string(),
                    _ => String::new(),
                };
                out.push_str(&text);
            }
        }
    }
    out
}

pub const STYLES: &str = "None, AllowLeadingWhite, AllowTrailingWhite, AllowInnerWhite, AllowWhiteSpaces, NoCurrentDateDefault, AdjustToUniversal, AssumeLocal, AssumeUniversal, RoundtripKind";

/// Apply .NET DateTimeStyles (comma- or `|`-separated) to a parsed date. Local time is UTC
/// for this agent; the white-space styles are always in effect.
pub fn apply_styles(mut p: Parsed, styles: &str) -> Result<Parsed, String> {
    for style in styles
        .split([',', '|'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let known = STYLES.split(", ").find(|s| s.eq_ignore_ascii_case(style));
        match known {
            None => {
                return Err(format!(
                    "unknown dateTimeStyles value \"{style}\": expected one of {STYLES}"
                ));
            }
            Some("AdjustToUniversal") => {
                let ts = p.timestamp()?;
                p = Parsed::from_timestamp(ts);
            }
            Some("AssumeLocal" | "AssumeUniversal") => {
                p.offset = p.offset.or(Some(Offset::UTC));
            }
            Some(_) => {}
        }
    }
    Ok(p)
}
