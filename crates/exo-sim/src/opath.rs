//! The subset of OPATH (`-Filter`) the emulator understands.
//!
//! `Property -op Value` comparisons joined by `-and` / `-or`, optionally parenthesised.
//! Operators: `-eq -ne -ge -gt -le -lt`. Values: `'single quoted'` (with `''` for a quote),
//! `"double quoted"`, `$true`, `$false`, `$null`, or a bare word. Properties:
//! `WhenChangedUTC`/`WhenChanged`/`WhenCreatedUTC` (dates), `IsExchangeCloudManaged`,
//! `IsDirSynced`, `HiddenFromAddressListsEnabled` (booleans), `RecipientTypeDetails`,
//! `CustomAttribute1..15`, `PrimarySmtpAddress`, `UserPrincipalName`, `Alias`,
//! `DisplayName`, `ExternalDirectoryObjectId` (strings, compared case-insensitively).
//!
//! Each cmdlet parses for its recipient [`Family`]: groups and contacts have no
//! `UserPrincipalName`, and no public capture shows `IsExchangeCloudManaged` on them
//! (`docs/groups-and-contacts.md`), so a filter naming either is refused there, and
//! `RecipientTypeDetails` takes the family's own types only.

use jiff::Timestamp;

use crate::mailbox::{RecipientKind, SimMailbox};

/// Which recipients a filter is for: the cmdlet's family decides the properties it may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Get-Mailbox.
    Mailbox,
    /// Get-DistributionGroup.
    Group,
    /// Get-MailContact.
    Contact,
}

impl Family {
    fn has(self, prop: &Prop) -> bool {
        self == Family::Mailbox
            || !matches!(prop, Prop::UserPrincipalName | Prop::IsExchangeCloudManaged)
    }

    /// The family's `RecipientTypeDetails` value spelled as Exchange writes it.
    fn type_details(self, s: &str) -> Option<&'static str> {
        match self {
            Family::Mailbox => RecipientKind::from_details(s).map(RecipientKind::details),
            Family::Group => crate::recipient::GROUP_TYPE_DETAILS
                .iter()
                .find(|t| t.eq_ignore_ascii_case(s))
                .copied(),
            Family::Contact => crate::recipient::CONTACT_TYPE_DETAILS
                .iter()
                .find(|t| t.eq_ignore_ascii_case(s))
                .copied(),
        }
    }
}

/// What a filter reads from a record.
pub trait Subject {
    /// `WhenChangedUTC` (`created` false) or `WhenCreatedUTC`.
    fn date(&self, created: bool) -> Timestamp;
    /// A Boolean property (`IsExchangeCloudManaged`, `IsDirSynced`,
    /// `HiddenFromAddressListsEnabled`).
    fn flag(&self, prop: &Prop) -> bool;
    /// A text property; `""` when empty.
    fn text(&self, prop: &Prop) -> &str;
}

impl Subject for SimMailbox {
    fn date(&self, created: bool) -> Timestamp {
        if created {
            self.when_created
        } else {
            self.when_changed
        }
    }
    fn flag(&self, prop: &Prop) -> bool {
        match prop {
            Prop::IsExchangeCloudManaged => self.is_exchange_cloud_managed,
            Prop::IsDirSynced => self.is_dir_synced,
            _ => self.hidden_from_address_lists_enabled,
        }
    }
    fn text(&self, prop: &Prop) -> &str {
        match prop {
            Prop::RecipientTypeDetails => self.kind.details(),
            Prop::CustomAttribute(n) => self.custom_attribute(*n),
            Prop::PrimarySmtpAddress => self.primary_smtp_address(),
            Prop::UserPrincipalName => &self.user_principal_name,
            Prop::Alias => &self.alias,
            Prop::DisplayName => &self.display_name,
            Prop::ExternalDirectoryObjectId => &self.external_directory_object_id,
            _ => "",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Ge,
    Gt,
    Le,
    Lt,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Prop {
    WhenChanged,
    WhenCreated,
    IsExchangeCloudManaged,
    IsDirSynced,
    HiddenFromAddressListsEnabled,
    RecipientTypeDetails,
    CustomAttribute(u8),
    PrimarySmtpAddress,
    UserPrincipalName,
    Alias,
    DisplayName,
    ExternalDirectoryObjectId,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Date(Timestamp),
    Bool(bool),
    Str(String),
    Null,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Cmp(Prop, Op, Operand),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
}

/// Why a filter was refused; `position` is 1-based like Exchange's message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message} at position {position}")]
pub struct FilterError {
    pub message: String,
    pub position: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    Dash(String),
    Var(String),
    Quoted(String),
    Word(String),
}

fn lex(input: &str) -> Result<Vec<(usize, Tok)>, FilterError> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |m: &str, p: usize| FilterError {
        message: m.to_string(),
        position: p + 1,
    };
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push((start, Tok::LParen));
                i += 1;
            }
            ')' => {
                out.push((start, Tok::RParen));
                i += 1;
            }
            '\'' | '"' => {
                let q = c;
                i += 1;
                let mut s = String::new();
                loop {
                    match chars.get(i) {
                        None => return Err(err("Unterminated string", start)),
                        Some(&ch) if ch == q => {
                            if chars.get(i + 1) == Some(&q) {
                                s.push(q);
                                i += 2;
                            } else {
                                i += 1;
                                break;
                            }
                        }
                        Some(&ch) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                out.push((start, Tok::Quoted(s)));
            }
            '-' | '$' => {
                i += 1;
                let mut s = String::new();
                while let Some(&ch) = chars.get(i) {
                    if ch.is_alphanumeric() || ch == '_' {
                        s.push(ch);
                        i += 1;
                    } else {
                        break;
                    }
                }
                if s.is_empty() {
                    return Err(err("Unexpected character", start));
                }
                out.push((start, if c == '-' { Tok::Dash(s) } else { Tok::Var(s) }));
            }
            _ => {
                let mut s = String::new();
                while let Some(&ch) = chars.get(i) {
                    if ch.is_whitespace() || ch == '(' || ch == ')' {
                        break;
                    }
                    s.push(ch);
                    i += 1;
                }
                out.push((start, Tok::Word(s)));
            }
        }
    }
    Ok(out)
}

struct Parser {
    family: Family,
    toks: Vec<(usize, Tok)>,
    pos: usize,
    len: usize,
}

impl Parser {
    fn here(&self) -> usize {
        self.toks.get(self.pos).map(|t| t.0).unwrap_or(self.len) + 1
    }
    fn err(&self, m: &str) -> FilterError {
        FilterError {
            message: m.to_string(),
            position: self.here(),
        }
    }
    fn peek_dash(&self, word: &str) -> bool {
        matches!(self.toks.get(self.pos), Some((_, Tok::Dash(w))) if w.eq_ignore_ascii_case(word))
    }
    fn or(&mut self) -> Result<Filter, FilterError> {
        let mut left = self.and()?;
        while self.peek_dash("or") {
            self.pos += 1;
            let right = self.and()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }
    fn and(&mut self) -> Result<Filter, FilterError> {
        let mut left = self.unary()?;
        while self.peek_dash("and") {
            self.pos += 1;
            let right = self.unary()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }
    fn unary(&mut self) -> Result<Filter, FilterError> {
        if self.peek_dash("not") {
            self.pos += 1;
            return Ok(Filter::Not(Box::new(self.unary()?)));
        }
        match self.toks.get(self.pos).cloned() {
            Some((_, Tok::LParen)) => {
                self.pos += 1;
                let f = self.or()?;
                match self.toks.get(self.pos) {
                    Some((_, Tok::RParen)) => {
                        self.pos += 1;
                        Ok(f)
                    }
                    _ => Err(self.err("Missing closing parenthesis")),
                }
            }
            Some((_, Tok::Word(name))) => {
                let prop = prop_named(&name)
                    .filter(|p| self.family.has(p))
                    .ok_or_else(|| FilterError {
                        message: format!("The property '{name}' is not supported by this filter"),
                        position: self.here(),
                    })?;
                self.pos += 1;
                let op = match self.toks.get(self.pos) {
                    Some((_, Tok::Dash(o))) => match o.to_ascii_lowercase().as_str() {
                        "eq" => Op::Eq,
                        "ne" => Op::Ne,
                        "ge" => Op::Ge,
                        "gt" => Op::Gt,
                        "le" => Op::Le,
                        "lt" => Op::Lt,
                        _ => return Err(self.err("Unsupported operator")),
                    },
                    _ => return Err(self.err("Expected a comparison operator")),
                };
                self.pos += 1;
                let raw = match self.toks.get(self.pos).cloned() {
                    Some((_, Tok::Quoted(s))) | Some((_, Tok::Word(s))) => RawOperand::Text(s),
                    Some((_, Tok::Var(v))) => match v.to_ascii_lowercase().as_str() {
                        "true" => RawOperand::Bool(true),
                        "false" => RawOperand::Bool(false),
                        "null" => RawOperand::Null,
                        _ => return Err(self.err("Variables are not supported")),
                    },
                    _ => return Err(self.err("Expected a value")),
                };
                let operand = typed_operand(&prop, raw, self.family).map_err(|m| self.err(&m))?;
                self.pos += 1;
                Ok(Filter::Cmp(prop, op, operand))
            }
            _ => Err(self.err("Expected a property name")),
        }
    }
}

enum RawOperand {
    Text(String),
    Bool(bool),
    Null,
}

fn prop_named(name: &str) -> Option<Prop> {
    let l = name.to_ascii_lowercase();
    if let Some(n) = l.strip_prefix("customattribute") {
        let n: u8 = n.parse().ok()?;
        return (1..=15).contains(&n).then_some(Prop::CustomAttribute(n));
    }
    Some(match l.as_str() {
        "whenchangedutc" | "whenchanged" => Prop::WhenChanged,
        "whencreatedutc" | "whencreated" => Prop::WhenCreated,
        "isexchangecloudmanaged" => Prop::IsExchangeCloudManaged,
        "isdirsynced" => Prop::IsDirSynced,
        "hiddenfromaddresslistsenabled" => Prop::HiddenFromAddressListsEnabled,
        "recipienttypedetails" => Prop::RecipientTypeDetails,
        "primarysmtpaddress" => Prop::PrimarySmtpAddress,
        "userprincipalname" => Prop::UserPrincipalName,
        "alias" => Prop::Alias,
        "displayname" => Prop::DisplayName,
        "externaldirectoryobjectid" => Prop::ExternalDirectoryObjectId,
        _ => return None,
    })
}

/// Parses the date literals Microsoft documents for Exchange Online filters, and only those:
/// the en-US `M/d/yyyy h:mm:ss tt` of every date example in "Filterable properties for the
/// Filter parameter" (`WhenChangedUTC -gt '8/1/2017 2:00:00 PM'`) and the date-only
/// `M/d/yyyy` (`LitigationHoldDate -gt '8/13/2017'`); "regional settings of the Exchange
/// server" (recipientfilter-properties.md), en-US for Exchange Online. The value is taken as
/// UTC. ISO 8601 (with or without `Z`) is not documented and is refused, so a client cannot
/// pass by a form the service may read differently.
pub fn parse_filter_date(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    let utc = |dt: jiff::civil::DateTime| {
        dt.to_zoned(jiff::tz::TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp())
    };
    let parts: Vec<&str> = s.split(' ').collect();
    let date = |d: &str| -> Option<jiff::civil::Date> {
        let mut it = d.split('/');
        let (m, day, y) = (it.next()?, it.next()?, it.next()?);
        let ok = |x: &str, max: usize| {
            !x.is_empty() && x.len() <= max && x.bytes().all(|b| b.is_ascii_digit())
        };
        if it.next().is_some() || !ok(m, 2) || !ok(day, 2) || y.len() != 4 || !ok(y, 4) {
            return None;
        }
        jiff::civil::Date::new(y.parse().ok()?, m.parse().ok()?, day.parse().ok()?).ok()
    };
    match parts.as_slice() {
        [d] => utc(date(d)?.to_datetime(jiff::civil::Time::midnight())),
        [d, t, ampm] => {
            let mut it = t.split(':');
            let (h, mi, sec) = (it.next()?, it.next()?, it.next()?);
            let two =
                |x: &str| !x.is_empty() && x.len() <= 2 && x.bytes().all(|b| b.is_ascii_digit());
            if it.next().is_some()
                || !two(h)
                || mi.len() != 2
                || !two(mi)
                || sec.len() != 2
                || !two(sec)
            {
                return None;
            }
            let h: i8 = h.parse().ok()?;
            if !(1..=12).contains(&h) {
                return None;
            }
            let h = match ampm.to_ascii_uppercase().as_str() {
                "AM" => h % 12,
                "PM" => h % 12 + 12,
                _ => return None,
            };
            let time = jiff::civil::Time::new(h, mi.parse().ok()?, sec.parse().ok()?, 0).ok()?;
            utc(date(d)?.to_datetime(time))
        }
        _ => None,
    }
}

fn typed_operand(prop: &Prop, raw: RawOperand, family: Family) -> Result<Operand, String> {
    match (prop, raw) {
        (_, RawOperand::Null) => Ok(Operand::Null),
        (Prop::WhenChanged | Prop::WhenCreated, RawOperand::Text(s)) => parse_filter_date(&s)
            .map(Operand::Date)
            .ok_or_else(|| format!("The value '{s}' could not be converted to a date")),
        (
            Prop::IsExchangeCloudManaged | Prop::IsDirSynced | Prop::HiddenFromAddressListsEnabled,
            RawOperand::Bool(b),
        ) => Ok(Operand::Bool(b)),
        (
            Prop::IsExchangeCloudManaged | Prop::IsDirSynced | Prop::HiddenFromAddressListsEnabled,
            RawOperand::Text(s),
        ) => match s.to_ascii_lowercase().as_str() {
            "true" | "$true" => Ok(Operand::Bool(true)),
            "false" | "$false" => Ok(Operand::Bool(false)),
            _ => Err(format!(
                "The value '{s}' could not be converted to a boolean"
            )),
        },
        (Prop::RecipientTypeDetails, RawOperand::Text(s)) => family
            .type_details(&s)
            .map(|k| Operand::Str(k.to_string()))
            .ok_or_else(|| format!("The value '{s}' is not a valid RecipientTypeDetails")),
        (_, RawOperand::Text(s)) => Ok(Operand::Str(s)),
        (_, RawOperand::Bool(_)) => Err("A boolean cannot be compared with this property".into()),
    }
}

/// Parses a Get-Mailbox filter string.
pub fn parse(input: &str) -> Result<Filter, FilterError> {
    parse_for(input, Family::Mailbox)
}

/// Parses a filter string for one recipient family's cmdlet.
pub fn parse_for(input: &str, family: Family) -> Result<Filter, FilterError> {
    let toks = lex(input)?;
    if toks.is_empty() {
        return Err(FilterError {
            message: "Empty filter".into(),
            position: 1,
        });
    }
    let mut p = Parser {
        family,
        toks,
        pos: 0,
        len: input.chars().count(),
    };
    let f = p.or()?;
    if p.pos != p.toks.len() {
        return Err(p.err("Unexpected text after the filter"));
    }
    Ok(f)
}

fn cmp<T: PartialOrd>(a: &T, op: Op, b: &T) -> bool {
    match op {
        Op::Eq => a == b,
        Op::Ne => a != b,
        Op::Ge => a >= b,
        Op::Gt => a > b,
        Op::Le => a <= b,
        Op::Lt => a < b,
    }
}

impl Filter {
    /// True when the record matches.
    pub fn matches<S: Subject + ?Sized>(&self, m: &S) -> bool {
        match self {
            Filter::And(a, b) => a.matches(m) && b.matches(m),
            Filter::Or(a, b) => a.matches(m) || b.matches(m),
            Filter::Not(a) => !a.matches(m),
            Filter::Cmp(prop, op, operand) => match prop {
                Prop::WhenChanged | Prop::WhenCreated => match operand {
                    Operand::Date(d) => cmp(&m.date(*prop == Prop::WhenCreated), *op, d),
                    _ => false,
                },
                Prop::IsExchangeCloudManaged
                | Prop::IsDirSynced
                | Prop::HiddenFromAddressListsEnabled => match operand {
                    Operand::Bool(b) => cmp(&m.flag(prop), *op, b),
                    _ => false,
                },
                _ => {
                    let v = m.text(prop);
                    match operand {
                        Operand::Null => cmp(&v.is_empty(), *op, &true),
                        Operand::Str(s) => cmp(&v.to_lowercase(), *op, &s.to_lowercase()),
                        _ => false,
                    }
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn mailbox() -> SimMailbox {
        let t: Timestamp = "2024-04-10T08:56:22Z".parse().unwrap();
        let mut m = SimMailbox::new(Uuid::from_u128(1), "jdoe", "j.doe@contoso.com", t);
        m.is_dir_synced = true;
        m.is_exchange_cloud_managed = true;
        m.set_custom_attribute(1, "O'Brien");
        m
    }

    #[test]
    fn filters_match_as_exchange_would() {
        let m = mailbox();
        let cases: &[(&str, bool)] = &[
            ("WhenChangedUTC -ge '4/10/2024 8:56:22 AM'", true),
            ("WhenChangedUTC -gt '4/10/2024 8:56:22 AM'", false),
            ("WhenChangedUTC -lt '4/11/2024'", true),
            ("WhenChanged -le '04/10/2024 08:56:22 am'", true),
            ("WhenChangedUTC -lt '4/10/2024 12:00:00 PM'", true),
            ("WhenChangedUTC -lt '4/10/2024 12:00:00 AM'", false),
            ("IsExchangeCloudManaged -eq $true", true),
            ("IsDirSynced -ne $true", false),
            (
                "(IsDirSynced -eq $true) -and (RecipientTypeDetails -eq 'UserMailbox')",
                true,
            ),
            (
                "IsDirSynced -eq $false -or RecipientTypeDetails -eq 'usermailbox'",
                true,
            ),
            (
                "RecipientTypeDetails -ne 'SharedMailbox' -and IsDirSynced -eq $false",
                false,
            ),
            ("CustomAttribute1 -eq 'O''Brien'", true),
            ("CustomAttribute2 -eq $null", true),
            ("-not (IsDirSynced -eq $true)", false),
        ];
        for (f, expect) in cases {
            let parsed = parse(f).unwrap_or_else(|e| panic!("{f}: {e}"));
            assert_eq!(parsed.matches(&m), *expect, "{f}");
        }
    }

    #[test]
    fn bad_filters_are_refused_with_a_position() {
        let cases: &[(&str, usize)] = &[
            ("Foo -eq 'x'", 1),
            ("IsDirSynced -like $true", 13),
            ("IsDirSynced -eq", 16),
            ("(IsDirSynced -eq $true", 23),
            ("WhenChangedUTC -ge 'yesterday'", 20),
            ("WhenChangedUTC -ge '2024-04-10T08:56:22Z'", 20),
            ("WhenChangedUTC -ge '2024-04-10T08:56:22'", 20),
            ("WhenChangedUTC -ge '04/10/2024 08:56:22'", 20),
            ("WhenChangedUTC -ge '4/10/2024 13:56:22 PM'", 20),
            ("WhenChangedUTC -ge '13/10/2024'", 20),
            ("RecipientTypeDetails -eq 'Robot'", 26),
            ("CustomAttribute1 -eq 'unterminated", 22),
            ("", 1),
        ];
        for (f, pos) in cases {
            let e = parse(f).expect_err(f);
            assert_eq!(e.position, *pos, "{f}: {e}");
        }
    }
}
