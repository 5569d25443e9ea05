//! The function table: names, argument counts and which arguments may be left empty.

/// A function the language knows. Names are matched case-insensitively and printed as here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Func {
    Append,
    BitAnd,
    CBool,
    CDate,
    Coalesce,
    Contains,
    ConvertFromBase64,
    ConvertToBase64,
    ConvertToUTF8Hex,
    Count,
    CRef,
    CStr,
    DateAdd,
    DateDiff,
    DateFromNum,
    DNComponent,
    Error,
    FormatDateTime,
    Guid,
    IgnoreFlowIfNullOrEmpty,
    Iif,
    InStr,
    IsNull,
    IsNullOrEmpty,
    IsPresent,
    IsString,
    Item,
    Join,
    Left,
    Mid,
    NormalizeDiacritics,
    Not,
    Now,
    NumFromDate,
    PCase,
    RandomString,
    Redact,
    RemoveDuplicates,
    Replace,
    Split,
    StringFromSid,
    StripSpaces,
    Switch,
    ToLower,
    ToUpper,
    Trim,
    Word,
}

/// How many arguments a function takes and which may be left empty (`F(a, , c)`).
pub struct Signature {
    pub min: usize,
    /// `None`: any number.
    pub max: Option<usize>,
    /// 1-based positions that may be left empty.
    pub omissible: &'static [usize],
    /// How the call reads, for error messages.
    pub usage: &'static str,
}

pub const ALL: &[Func] = &[
    Func::Append,
    Func::BitAnd,
    Func::CBool,
    Func::CDate,
    Func::Coalesce,
    Func::Contains,
    Func::ConvertFromBase64,
    Func::ConvertToBase64,
    Func::ConvertToUTF8Hex,
    Func::Count,
    Func::CRef,
    Func::CStr,
    Func::DateAdd,
    Func::DateDiff,
    Func::DateFromNum,
    Func::DNComponent,
    Func::Error,
    Func::FormatDateTime,
    Func::Guid,
    Func::IgnoreFlowIfNullOrEmpty,
    Func::Iif,
    Func::InStr,
    Func::IsNull,
    Func::IsNullOrEmpty,
    Func::IsPresent,
    Func::IsString,
    Func::Item,
    Func::Join,
    Func::Left,
    Func::Mid,
    Func::NormalizeDiacritics,
    Func::Not,
    Func::Now,
    Func::NumFromDate,
    Func::PCase,
    Func::RandomString,
    Func::Redact,
    Func::RemoveDuplicates,
    Func::Replace,
    Func::Split,
    Func::StringFromSid,
    Func::StripSpaces,
    Func::Switch,
    Func::ToLower,
    Func::ToUpper,
    Func::Trim,
    Func::Word,
];

/// Functions of Microsoft's language that only make sense in app provisioning.
pub const APP_PROVISIONING_ONLY: &[&str] = &[
    "AppRoleAssignmentsComplex",
    "SingleAppRoleAssignment",
    "SelectUniqueValue",
];

impl Func {
    pub fn name(self) -> &'static str {
        match self {
            Func::Append => "Append",
            Func::BitAnd => "BitAnd",
            Func::CBool => "CBool",
            Func::CDate => "CDate",
            Func::Coalesce => "Coalesce",
            Func::Contains => "Contains",
            Func::ConvertFromBase64 => "ConvertFromBase64",
            Func::ConvertToBase64 => "ConvertToBase64",
            Func::ConvertToUTF8Hex => "ConvertToUTF8Hex",
            Func::Count => "Count",
            Func::CRef => "CRef",
            Func::CStr => "CStr",
            Func::DateAdd => "DateAdd",
            Func::DateDiff => "DateDiff",
            Func::DateFromNum => "DateFromNum",
            Func::DNComponent => "DNComponent",
            Func::Error => "Error",
            Func::FormatDateTime => "FormatDateTime",
            Func::Guid => "Guid",
            Func::IgnoreFlowIfNullOrEmpty => "IgnoreFlowIfNullOrEmpty",
            Func::Iif => "IIF",
            Func::InStr => "InStr",
            Func::IsNull => "IsNull",
            Func::IsNullOrEmpty => "IsNullOrEmpty",
            Func::IsPresent => "IsPresent",
            Func::IsString => "IsString",
            Func::Item => "Item",
            Func::Join => "Join",
            Func::Left => "Left",
            Func::Mid => "Mid",
            Func::NormalizeDiacritics => "NormalizeDiacritics",
            Func::Not => "Not",
            Func::Now => "Now",
            Func::NumFromDate => "NumFromDate",
            Func::PCase => "PCase",
            Func::RandomString => "RandomString",
            Func::Redact => "Redact",
            Func::RemoveDuplicates => "RemoveDuplicates",
            Func::Replace => "Replace",
            Func::Split => "Split",
            Func::StringFromSid => "StringFromSid",
            Func::StripSpaces => "StripSpaces",
            Func::Switch => "Switch",
            Func::ToLower => "ToLower",
            Func::ToUpper => "ToUpper",
            Func::Trim => "Trim",
            Func::Word => "Word",
        }
    }

    pub fn lookup(name: &str) -> Option<Func> {
        ALL.iter()
            .copied()
            .find(|f| f.name().eq_ignore_ascii_case(name))
    }

    pub fn signature(self) -> Signature {
        let sig = |min, max, omissible, usage| Signature {
            min,
            max,
            omissible,
            usage,
        };
        match self {
            Func::Append => sig(2, Some(2), &[], "Append(source, suffix)"),
            Func::BitAnd => sig(2, Some(2), &[], "BitAnd(value1, value2)"),
            Func::CBool => sig(1, Some(1), &[], "CBool(expression)"),
            Func::CDate => sig(1, Some(1), &[], "CDate(expression)"),
            Func::Coalesce => sig(1, None, &[], "Coalesce(source1, source2, …, defaultValue)"),
            Func::Contains => sig(
                2,
                Some(3),
                &[],
                "Contains(attribute, search, CaseSensitive|IgnoreCase)",
            ),
            Func::ConvertFromBase64 => sig(
                1,
                Some(2),
                &[],
                "ConvertFromBase64(source, Unicode|UTF8|ASCII)",
            ),
            Func::ConvertToBase64 => sig(1, Some(1), &[], "ConvertToBase64(source)"),
            Func::ConvertToUTF8Hex => sig(1, Some(1), &[], "ConvertToUTF8Hex(source)"),
            Func::Count => sig(1, Some(1), &[], "Count(attribute)"),
            Func::CRef => sig(1, Some(1), &[], "CRef(dn)"),
            Func::CStr => sig(1, Some(1), &[], "CStr(value)"),
            Func::DateAdd => sig(3, Some(3), &[], "DateAdd(interval, value, dateTime)"),
            Func::DateDiff => sig(3, Some(3), &[], "DateDiff(interval, date1, date2)"),
            Func::DateFromNum => sig(1, Some(1), &[], "DateFromNum(value)"),
            Func::DNComponent => sig(2, Some(2), &[], "DNComponent(dn, componentNumber)"),
            Func::Error => sig(1, Some(1), &[], "Error(message)"),
            Func::FormatDateTime => sig(
                3,
                Some(4),
                &[2],
                "FormatDateTime(source, dateTimeStyles, inputFormat, outputFormat) or FormatDateTime(source, inputFormat, outputFormat)",
            ),
            Func::Guid => sig(0, Some(0), &[], "Guid()"),
            Func::IgnoreFlowIfNullOrEmpty => {
                sig(1, Some(1), &[], "IgnoreFlowIfNullOrEmpty(expression)")
            }
            Func::Iif => sig(3, Some(3), &[], "IIF(condition, valueIfTrue, valueIfFalse)"),
            Func::InStr => sig(
                2,
                Some(4),
                &[3],
                "InStr(value1, value2, start, vbTextCompare|vbBinaryCompare)",
            ),
            Func::IsNull => sig(1, Some(1), &[], "IsNull(expression)"),
            Func::IsNullOrEmpty => sig(1, Some(1), &[], "IsNullOrEmpty(expression)"),
            Func::IsPresent => sig(1, Some(1), &[], "IsPresent(expression)"),
            Func::IsString => sig(1, Some(1), &[], "IsString(expression)"),
            Func::Item => sig(2, Some(2), &[], "Item(attribute, index)"),
            Func::Join => sig(2, None, &[], "Join(separator, source1, source2, …)"),
            Func::Left => sig(2, Some(2), &[], "Left(string, numChars)"),
            Func::Mid => sig(2, Some(3), &[], "Mid(source, start, length)"),
            Func::NormalizeDiacritics => sig(1, Some(1), &[], "NormalizeDiacritics(source)"),
            Func::Not => sig(1, Some(1), &[], "Not(source)"),
            Func::Now => sig(0, Some(0), &[], "Now()"),
            Func::NumFromDate => sig(1, Some(1), &[], "NumFromDate(value)"),
            Func::PCase => sig(1, Some(2), &[], "PCase(source, wordSeparators)"),
            Func::RandomString => sig(
                5,
                Some(6),
                &[],
                "RandomString(length, minimumNumbers, minimumSpecialCharacters, minimumCapital, minimumLowerCase, charactersToAvoid)",
            ),
            Func::Redact => sig(1, Some(1), &[], "Redact(value)"),
            Func::RemoveDuplicates => sig(1, Some(1), &[], "RemoveDuplicates(attribute)"),
            Func::Replace => sig(
                3,
                Some(7),
                &[2, 3, 4, 5, 6, 7],
                "Replace(source, oldValue, regexPattern, regexGroupName, replacementValue, replacementAttributeName, template)",
            ),
            Func::Split => sig(2, Some(2), &[], "Split(source, delimiter)"),
            Func::StringFromSid => sig(1, Some(1), &[], "StringFromSid(objectSid)"),
            Func::StripSpaces => sig(1, Some(1), &[], "StripSpaces(source)"),
            Func::Switch => sig(
                2,
                None,
                &[2],
                "Switch(source, defaultValue, key1, value1, key2, value2, …)",
            ),
            Func::ToLower => sig(1, Some(2), &[2], "ToLower(source, culture)"),
            Func::ToUpper => sig(1, Some(2), &[2], "ToUpper(source, culture)"),
            Func::Trim => sig(1, Some(1), &[], "Trim(value)"),
            Func::Word => sig(3, Some(3), &[], "Word(string, wordNumber, delimiters)"),
        }
    }
}

/// The closest known function name, for "did you mean" hints.
pub fn suggest(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    ALL.iter()
        .map(|f| f.name())
        .map(|n| (edit_distance(&lower, &n.to_ascii_lowercase()), n))
        .filter(|(d, n)| *d <= 2.max(n.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}
