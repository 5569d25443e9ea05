//! .NET custom date and time format strings, as `FormatDateTime` uses them: parsing with
//! `DateTime.ParseExact`'s rules, formatting (invariant culture) and `DateTimeStyles`.

use jiff::civil::Date;
use jiff::tz::Offset;

use super::{DAYS, MONTHS, Parsed, Scan, civil, twelve_hour};

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
