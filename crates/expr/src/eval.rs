//! The evaluator: walks the tree once per source. Arguments are evaluated lazily where the
//! function chooses between them (IIF, Switch, Coalesce), so `IgnoreThisFlow` or `Error` in
//! a branch not taken has no effect.

use std::cmp::Ordering;

use base64::Engine as _;

use crate::ast::{CmpOp, Named, Node, NodeKind};
use crate::functions::Func;
use crate::value::Value;
use crate::{EvalContext, EvalError, Source, datetime, parse, text};

/// Why evaluation stopped before producing a value.
pub enum Stop {
    Error(EvalError),
    IgnoreFlow,
    AuthoritativeNull,
}

type R<T> = Result<T, Stop>;

/// SplitMix64: a small, well-distributed generator; deterministic from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

pub struct Evaluator<'a> {
    source: &'a dyn Source,
    ctx: &'a EvalContext,
    rng: Rng,
}

fn fail(offset: usize, message: String) -> Stop {
    Stop::Error(EvalError { message, offset })
}

const SPECIAL_CHARACTERS: &str = "~!@#$%^&*_-+=`|\\(){}[]:;\"'<>,.?/";

impl<'a> Evaluator<'a> {
    pub fn new(source: &'a dyn Source, ctx: &'a EvalContext) -> Evaluator<'a> {
        Evaluator {
            source,
            ctx,
            rng: Rng(ctx.seed),
        }
    }

    pub fn eval(&mut self, node: &Node) -> R<Value> {
        match &node.kind {
            NodeKind::Str(s) => Ok(Value::Str(s.clone())),
            NodeKind::Int { value, .. } => Ok(Value::Int(*value)),
            NodeKind::Bool(b) => Ok(Value::Bool(*b)),
            NodeKind::Null => Ok(Value::Null),
            NodeKind::IgnoreThisFlow => Err(Stop::IgnoreFlow),
            NodeKind::AuthoritativeNull => Err(Stop::AuthoritativeNull),
            NodeKind::Named(n) => Ok(Value::Str(n.name().to_string())),
            NodeKind::Attr(name) => self.source.get(name).ok_or_else(|| {
                fail(
                    node.span.start,
                    format!("unknown attribute [{name}]: the source has no attribute of that name"),
                )
            }),
            NodeKind::Concat(l, r) => {
                let (lv, rv) = (self.eval(l)?, self.eval(r)?);
                if lv.is_nullish() && rv.is_nullish() {
                    return Ok(Value::Null);
                }
                let side = |v: &Value, n: &Node| -> R<String> {
                    if v.is_nullish() {
                        return Ok(String::new());
                    }
                    v.to_text().ok_or_else(|| {
                        fail(
                            n.span.start,
                            format!(
                                "`&` joins single text values, but this is a {} value{}",
                                v.type_name(),
                                hint_for(v)
                            ),
                        )
                    })
                };
                Ok(Value::Str(side(&lv, l)? + &side(&rv, r)?))
            }
            NodeKind::Compare(op, l, r) => {
                let (lv, rv) = (self.eval(l)?, self.eval(r)?);
                compare(*op, &lv, &rv)
                    .map(Value::Bool)
                    .map_err(|m| fail(node.span.start, m))
            }
            NodeKind::Call { func, args, regex } => {
                let call = Call {
                    func: *func,
                    node,
                    args,
                };
                self.call(&call, regex.as_ref())
            }
        }
    }

    #[allow(
        clippy::redundant_closure_call,
        reason = "one closure per function keeps stack frames small; see below"
    )]
    fn call(&mut self, c: &Call, regex: Option<&crate::ast::CompiledRegex>) -> R<Value> {
        use Func as F;
        // Each function runs in its own closure: in unoptimized builds a single large
        // match would give every nesting level the stack frame of all functions together.
        match c.func {
            F::Append => (|this: &mut Self| -> R<Value> {
                {
                    let suffix = this.text_or(c, 1, "")?;
                    let v = this.arg(c, 0)?;
                    c.map_text(v, 0, |s| Ok(Value::Str(format!("{s}{suffix}"))))
                }
            })(self),
            F::BitAnd => (|this: &mut Self| -> R<Value> {
                Ok(Value::Int(this.int(c, 0)? & this.int(c, 1)?))
            })(self),
            F::CBool => (|this: &mut Self| -> R<Value> {
                {
                    let v = this.arg(c, 0)?;
                    if v.is_nullish() {
                        return Ok(Value::Bool(false));
                    }
                    v.to_bool()
                        .map(Value::Bool)
                        .ok_or_else(|| c.bad(0, &v, "a value that is true or false, or a number"))
                }
            })(self),
            F::CDate => (|this: &mut Self| -> R<Value> {
                {
                    let v = this.arg(c, 0)?;
                    c.map_value(v, 0, |v| match v {
                        Value::DateTime(t) => Ok(Value::DateTime(t)),
                        v => match v.to_text() {
                            Some(s) => datetime::parse_lenient(&s)
                                .map(Value::DateTime)
                                .map_err(|m| c.fail(0, &m)),
                            None => Err(c.bad(0, &v, "a date-time string")),
                        },
                    })
                }
            })(self),
            F::Coalesce => (|this: &mut Self| -> R<Value> {
                {
                    for i in 0..c.args.len() {
                        let v = this.arg(c, i)?;
                        if !v.is_nullish() {
                            return Ok(v);
                        }
                    }
                    Ok(Value::Null)
                }
            })(self),
            F::Contains => (|this: &mut Self| -> R<Value> {
                {
                    let hay = this.arg(c, 0)?;
                    let needle = this.text_required(c, 1)?;
                    let ignore_case = this.mode(
                        c,
                        2,
                        &[Named::CaseSensitive, Named::IgnoreCase],
                        Named::CaseSensitive,
                    )? == Named::IgnoreCase;
                    let fold = |s: &str| {
                        if ignore_case {
                            text::lower(s)
                        } else {
                            s.to_string()
                        }
                    };
                    let needle = fold(&needle);
                    Ok(Value::Int(match hay {
                        Value::List(items) => items
                            .iter()
                            .position(|v| v.to_text().is_some_and(|s| fold(&s).contains(&needle)))
                            .map_or(0, |i| i as i64 + 1),
                        v if v.is_nullish() => 0,
                        v => {
                            let s = v.to_text().ok_or_else(|| c.bad(0, &v, "text"))?;
                            char_find(&fold(&s), &needle, 0).map_or(0, |i| i as i64 + 1)
                        }
                    }))
                }
            })(self),
            F::ConvertFromBase64 => (|this: &mut Self| -> R<Value> {
                {
                    let enc = this.mode(
                        c,
                        1,
                        &[Named::Unicode, Named::Utf8, Named::Ascii],
                        Named::Unicode,
                    )?;
                    let v = this.arg(c, 0)?;
                    c.map_text(v, 0, |s| {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(s.trim())
                        .map_err(|e| c.fail(0, &format!("\"{s}\" is not valid base64: {e}")))?;
                    let decoded = match enc {
                        Named::Utf8 => String::from_utf8(bytes).ok(),
                        Named::Ascii => bytes
                            .is_ascii()
                            .then(|| String::from_utf8_lossy(&bytes).into_owned()),
                        _ => (bytes.len() % 2 == 0)
                            .then(|| {
                                let units: Vec<u16> = bytes
                                    .chunks_exact(2)
                                    .map(|p| u16::from_le_bytes([p[0], p[1]]))
                                    .collect();
                                String::from_utf16(&units).ok()
                            })
                            .flatten(),
                    };
                    decoded.map(Value::Str).ok_or_else(|| {
                        c.fail(
                            0,
                            &format!(
                                "the decoded bytes are not valid {} text (name the encoding: Unicode, UTF8 or ASCII)",
                                enc.name()
                            ),
                        )
                    })
                })
                }
            })(self),
            F::ConvertToBase64 => (|this: &mut Self| -> R<Value> {
                {
                    let v = this.arg(c, 0)?;
                    c.map_value(v, 0, |v| {
                        let bytes: Vec<u8> = match v {
                            Value::Bytes(b) => b,
                            v => v
                                .to_text()
                                .ok_or_else(|| c.bad(0, &v, "text"))?
                                .encode_utf16()
                                .flat_map(u16::to_le_bytes)
                                .collect(),
                        };
                        Ok(Value::Str(
                            base64::engine::general_purpose::STANDARD.encode(bytes),
                        ))
                    })
                }
            })(self),
            F::ConvertToUTF8Hex => (|this: &mut Self| -> R<Value> {
                {
                    let v = this.arg(c, 0)?;
                    c.map_text(v, 0, |s| {
                        Ok(Value::Str(s.bytes().map(|b| format!("{b:02X}")).collect()))
                    })
                }
            })(self),
            F::Count => (|this: &mut Self| -> R<Value> {
                Ok(Value::Int(match this.arg(c, 0)? {
                    Value::List(items) => items.iter().filter(|v| !v.is_nullish()).count() as i64,
                    v if v.is_nullish() => 0,
                    _ => 1,
                }))
            })(self),
            F::CRef | F::Redact => (|this: &mut Self| -> R<Value> { this.arg(c, 0) })(self),
            F::CStr => (|this: &mut Self| -> R<Value> {
                {
                    let v = this.arg(c, 0)?;
                    c.map_text(v, 0, |s| Ok(Value::Str(s)))
                }
            })(self),
            F::DateAdd => (|this: &mut Self| -> R<Value> {
                {
                    let interval = this.text_required(c, 0)?;
                    let n = this.int(c, 1)?;
                    let v = this.arg(c, 2)?;
                    c.map_value(v, 2, |v| {
                        let t = c.timestamp(2, &v)?;
                        datetime::add(&interval, n, t)
                            .map(Value::DateTime)
                            .map_err(|m| c.fail(0, &m))
                    })
                }
            })(self),
            F::DateDiff => (|this: &mut Self| -> R<Value> {
                {
                    let interval = this.text_required(c, 0)?;
                    let (a, b) = (this.arg(c, 1)?, this.arg(c, 2)?);
                    if a.is_nullish() || b.is_nullish() {
                        return Ok(Value::Null);
                    }
                    let (a, b) = (c.timestamp(1, &a)?, c.timestamp(2, &b)?);
                    datetime::diff(&interval, a, b)
                        .map(Value::Int)
                        .map_err(|m| c.fail(0, &m))
                }
            })(self),
            F::DateFromNum => (|this: &mut Self| -> R<Value> {
                {
                    let v = this.arg(c, 0)?;
                    c.map_value(v, 0, |v| {
                        let n = v.to_int().ok_or_else(|| {
                            c.bad(0, &v, "a number (an AD date such as lastLogonTimestamp)")
                        })?;
                        datetime::from_filetime(n)
                            .map(Value::DateTime)
                            .map_err(|m| c.fail(0, &m))
                    })
                }
            })(self),
            F::DNComponent => (|this: &mut Self| -> R<Value> {
                {
                    let n = this.int(c, 1)?;
                    if n < 1 {
                        return Err(
                            c.fail(1, &format!("the component number counts from 1, got {n}"))
                        );
                    }
                    let v = this.arg(c, 0)?;
                    c.map_text(v, 0, |dn| {
                        let parts = text::dn_components(&dn);
                        Ok(parts
                            .get(n as usize - 1)
                            .map_or(Value::Null, |rdn| Value::Str(text::rdn_value(rdn))))
                    })
                }
            })(self),
            F::Error => (|this: &mut Self| -> R<Value> {
                {
                    let message = this.text_or(c, 0, "")?;
                    Err(fail(
                        c.node.span.start,
                        format!("the expression raised an error: {message}"),
                    ))
                }
            })(self),
            F::FormatDateTime => (|this: &mut Self| -> R<Value> {
                {
                    let (styles_at, in_at, out_at) = if c.args.len() == 4 {
                        (Some(1), 2, 3)
                    } else {
                        (None, 1, 2)
                    };
                    let styles = match styles_at {
                        Some(i) => this.text_or(c, i, "")?,
                        None => String::new(),
                    };
                    let input_format = this.text_required(c, in_at)?;
                    let output_format = this.text_required(c, out_at)?;
                    let today = this.ctx.now.to_zoned(jiff::tz::TimeZone::UTC).date();
                    let v = this.arg(c, 0)?;
                    c.map_value(v, 0, |v| {
                        let parsed = match v {
                            Value::DateTime(t) => datetime::Parsed::from_timestamp(t),
                            v => {
                                let s = v.to_text().ok_or_else(|| c.bad(0, &v, "a date string"))?;
                                datetime::parse_exact(&s, &input_format, today)
                                    .map_err(|m| c.fail(0, &m))?
                            }
                        };
                        let parsed = datetime::apply_styles(parsed, &styles)
                            .map_err(|m| c.fail(styles_at.unwrap_or(0), &m))?;
                        Ok(Value::Str(datetime::format(parsed, &output_format)))
                    })
                }
            })(self),
            F::Guid => (|this: &mut Self| -> R<Value> {
                {
                    let mut bytes = [0u8; 16];
                    bytes[..8].copy_from_slice(&this.rng.next().to_le_bytes());
                    bytes[8..].copy_from_slice(&this.rng.next().to_le_bytes());
                    let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
                    Ok(Value::Str(id.hyphenated().to_string()))
                }
            })(self),
            F::IgnoreFlowIfNullOrEmpty => (|this: &mut Self| -> R<Value> {
                {
                    let v = this.arg(c, 0)?;
                    if v.is_null_or_empty() {
                        Err(Stop::IgnoreFlow)
                    } else {
                        Ok(v)
                    }
                }
            })(self),
            F::Iif => (|this: &mut Self| -> R<Value> {
                {
                    let cond = this.arg(c, 0)?;
                    let truth = if cond.is_nullish() {
                        false
                    } else {
                        cond.to_bool()
                            .ok_or_else(|| c.bad(0, &cond, "a condition that is true or false"))?
                    };
                    this.arg(c, if truth { 1 } else { 2 })
                }
            })(self),
            F::InStr => (|this: &mut Self| -> R<Value> {
                {
                    let hay = this.arg(c, 0)?;
                    let needle = this.arg(c, 1)?;
                    let start = match c.args.get(2) {
                        Some(Some(_)) => this.int(c, 2)?,
                        _ => 1,
                    };
                    if start < 1 {
                        return Err(c.fail(2, &format!("start counts from 1, got {start}")));
                    }
                    let text_compare = this.mode(
                        c,
                        3,
                        &[Named::VbBinaryCompare, Named::VbTextCompare],
                        Named::VbBinaryCompare,
                    )? == Named::VbTextCompare;
                    if hay.is_nullish() || needle.is_nullish() {
                        return Ok(Value::Int(0));
                    }
                    let hay = hay.to_text().ok_or_else(|| c.bad(0, &hay, "text"))?;
                    let needle = needle.to_text().ok_or_else(|| c.bad(1, &needle, "text"))?;
                    let (hay, needle) = if text_compare {
                        (text::lower(&hay), text::lower(&needle))
                    } else {
                        (hay, needle)
                    };
                    Ok(Value::Int(
                        char_find(&hay, &needle, start as usize - 1).map_or(0, |i| i as i64 + 1),
                    ))
                }
            })(self),
            F::IsNull => {
                (|this: &mut Self| -> R<Value> { Ok(Value::Bool(this.arg(c, 0)?.is_nullish())) })(
                    self,
                )
            }
            F::IsNullOrEmpty => (|this: &mut Self| -> R<Value> {
                Ok(Value::Bool(this.arg(c, 0)?.is_null_or_empty()))
            })(self),
            F::IsPresent => (|this: &mut Self| -> R<Value> {
                Ok(Value::Bool(!this.arg(c, 0)?.is_null_or_empty()))
            })(self),
            F::IsString => (|this: &mut Self| -> R<Value> {
                Ok(Value::Bool(matches!(
                    this.arg(c, 0)?,
                    Value::Str(_) | Value::Int(_) | Value::Bool(_) | Value::DateTime(_)
                )))
            })(self),
            F::Item => (|this: &mut Self| -> R<Value> {
                {
                    let items = match this.arg(c, 0)? {
                        Value::List(items) => items,
                        v if v.is_nullish() => Vec::new(),
                        v => vec![v],
                    };
                    let i = this.int(c, 1)?;
                    if i < 1 || i as usize > items.len() {
                        return Err(c.fail(
                        1,
                        &format!(
                            "index {i} is out of range: the attribute has {} value(s), and Item counts from 1",
                            items.len()
                        ),
                    ));
                    }
                    Ok(items[i as usize - 1].clone())
                }
            })(self),
            F::Join => (|this: &mut Self| -> R<Value> {
                {
                    let sep = this.text_or(c, 0, "")?;
                    let mut parts = Vec::new();
                    for i in 1..c.args.len() {
                        let v = this.arg(c, i)?;
                        let values = match v {
                            Value::List(items) => items,
                            v => vec![v],
                        };
                        for v in values {
                            if v.is_null_or_empty() {
                                continue;
                            }
                            parts.push(v.to_text().ok_or_else(|| c.bad(i, &v, "text"))?);
                        }
                    }
                    Ok(Value::Str(parts.join(&sep)))
                }
            })(self),
            F::Left => (|this: &mut Self| -> R<Value> {
                {
                    let n = this.int(c, 1)?;
                    match this.arg(c, 0)? {
                        v if v.is_nullish() => Ok(Value::Str(String::new())),
                        v => c.map_text(v, 0, |s| {
                            Ok(Value::Str(if n < 0 {
                                s
                            } else {
                                s.chars().take(n as usize).collect()
                            }))
                        }),
                    }
                }
            })(self),
            F::Mid => (|this: &mut Self| -> R<Value> {
                {
                    let start = this.int(c, 1)?;
                    if start < 1 {
                        return Err(c.fail(1, &format!("start counts from 1, got {start}")));
                    }
                    let len = match c.args.get(2) {
                        Some(Some(_)) => {
                            let len = this.int(c, 2)?;
                            if len < 0 {
                                return Err(
                                    c.fail(2, &format!("length can't be negative, got {len}"))
                                );
                            }
                            Some(len as usize)
                        }
                        _ => None,
                    };
                    let v = this.arg(c, 0)?;
                    c.map_text(v, 0, |s| {
                        let chars = s.chars().skip(start as usize - 1);
                        Ok(Value::Str(match len {
                            Some(len) => chars.take(len).collect(),
                            None => chars.collect(),
                        }))
                    })
                }
            })(self),
            F::NormalizeDiacritics => (|this: &mut Self| -> R<Value> {
                {
                    let v = this.arg(c, 0)?;
                    c.map_text(v, 0, |s| Ok(Value::Str(text::normalize_diacritics(&s))))
                }
            })(self),
            F::Not => (|this: &mut Self| -> R<Value> {
                Ok(Value::Bool(this.arg(c, 0)?.to_bool() != Some(true)))
            })(self),
            F::Now => (|this: &mut Self| -> R<Value> { Ok(Value::DateTime(this.ctx.now)) })(self),
            F::NumFromDate => (|this: &mut Self| -> R<Value> {
                {
                    let v = this.arg(c, 0)?;
                    c.map_value(v, 0, |v| {
                        let t = c.timestamp(0, &v)?;
                        datetime::to_filetime(t)
                            .map(Value::Int)
                            .map_err(|m| c.fail(0, &m))
                    })
                }
            })(self),
            F::PCase => (|this: &mut Self| -> R<Value> {
                {
                    let seps = match c.args.get(1) {
                        Some(Some(_)) => Some(this.text_or(c, 1, "")?),
                        _ => None,
                    };
                    let v = this.arg(c, 0)?;
                    c.map_text(v, 0, |s| {
                        Ok(Value::Str(text::proper_case(&s, seps.as_deref())))
                    })
                }
            })(self),
            F::RandomString => (|this: &mut Self| -> R<Value> { this.random_string(c) })(self),
            F::RemoveDuplicates => (|this: &mut Self| -> R<Value> {
                Ok(match this.arg(c, 0)? {
                    Value::List(items) => {
                        let mut out: Vec<Value> = Vec::with_capacity(items.len());
                        for v in items {
                            if !out.contains(&v) {
                                out.push(v);
                            }
                        }
                        Value::List(out)
                    }
                    v => v,
                })
            })(self),
            F::Replace => (|this: &mut Self| -> R<Value> { this.replace(c, regex) })(self),
            F::Split => (|this: &mut Self| -> R<Value> {
                {
                    let delim = this.text_required(c, 1)?;
                    if delim.is_empty() {
                        return Err(c.fail(1, "the delimiter can't be empty"));
                    }
                    match this.arg(c, 0)? {
                        v if v.is_nullish() => Ok(Value::Null),
                        v => {
                            let s = v.to_text().ok_or_else(|| c.bad(0, &v, "text"))?;
                            Ok(Value::List(
                                s.split(delim.as_str())
                                    .map(str::trim)
                                    .filter(|p| !p.is_empty())
                                    .map(|p| Value::Str(p.to_string()))
                                    .collect(),
                            ))
                        }
                    }
                }
            })(self),
            F::StringFromSid => (|this: &mut Self| -> R<Value> {
                {
                    let v = this.arg(c, 0)?;
                    c.map_value(v, 0, |v| match v {
                        Value::Bytes(b) => {
                            text::sid_to_string(&b).map(Value::Str).ok_or_else(|| {
                                c.fail(0, "the binary value is not a security identifier")
                            })
                        }
                        Value::Str(s) if s.starts_with("S-") => Ok(Value::Str(s)),
                        v => Err(c.bad(0, &v, "a binary security identifier (objectSid)")),
                    })
                }
            })(self),
            F::StripSpaces => (|this: &mut Self| -> R<Value> {
                {
                    let v = this.arg(c, 0)?;
                    c.map_text(v, 0, |s| Ok(Value::Str(s.replace(' ', ""))))
                }
            })(self),
            F::Switch => (|this: &mut Self| -> R<Value> {
                {
                    let src = this.arg(c, 0)?;
                    if matches!(&src, Value::List(items) if items.len() > 1)
                        || matches!(src, Value::Bytes(_))
                    {
                        return Err(c.bad(0, &src, "a single value"));
                    }
                    let key_text = |v: &Value| v.to_text().unwrap_or_default();
                    let src = key_text(&src);
                    let mut i = 2;
                    while i + 1 < c.args.len() {
                        let key = this.arg(c, i)?;
                        if key_text(&key) == src {
                            return this.arg(c, i + 1);
                        }
                        i += 2;
                    }
                    this.arg(c, 1)
                }
            })(self),
            F::ToLower | F::ToUpper => (|this: &mut Self| -> R<Value> {
                {
                    if let Some(Some(_)) = c.args.get(1) {
                        let culture = this.text_or(c, 1, "")?;
                        let valid = culture.split('-').all(|p| {
                            !p.is_empty()
                                && p.len() <= 8
                                && p.chars().all(|ch| ch.is_ascii_alphanumeric())
                        });
                        if !culture.is_empty() && !valid {
                            return Err(c.fail(
                                1,
                                &format!("\"{culture}\" is not a culture name like en-US or ja-JP"),
                            ));
                        }
                    }
                    let upper = c.func == F::ToUpper;
                    let v = this.arg(c, 0)?;
                    c.map_text(v, 0, |s| {
                        Ok(Value::Str(if upper {
                            text::upper(&s)
                        } else {
                            text::lower(&s)
                        }))
                    })
                }
            })(self),
            F::Trim => (|this: &mut Self| -> R<Value> {
                {
                    let v = this.arg(c, 0)?;
                    c.map_text(v, 0, |s| Ok(Value::Str(s.trim().to_string())))
                }
            })(self),
            F::Word => (|this: &mut Self| -> R<Value> {
                {
                    let n = this.int(c, 1)?;
                    let delims = this.text_or(c, 2, "")?;
                    let v = this.arg(c, 0)?;
                    if v.is_nullish() {
                        return Ok(Value::Str(String::new()));
                    }
                    c.map_text(v, 0, |s| {
                        if n < 1 {
                            return Ok(Value::Str(String::new()));
                        }
                        let word = s
                            .split(|ch| delims.contains(ch))
                            .filter(|w| !w.is_empty())
                            .nth(n as usize - 1)
                            .unwrap_or("");
                        Ok(Value::Str(word.to_string()))
                    })
                }
            })(self),
        }
    }

    fn random_string(&mut self, c: &Call) -> R<Value> {
        let length = self.int(c, 0)?;
        let mins = [
            self.int(c, 1)?,
            self.int(c, 2)?,
            self.int(c, 3)?,
            self.int(c, 4)?,
        ];
        let avoid = match c.args.get(5) {
            Some(Some(_)) => self.text_or(c, 5, "")?,
            _ => String::new(),
        };
        if !(1..=256).contains(&length) {
            return Err(c.fail(0, &format!("the length must be 1 to 256, got {length}")));
        }
        if let Some(i) = mins.iter().position(|m| *m < 0) {
            return Err(c.fail(i + 1, "a minimum can't be negative"));
        }
        let total: i64 = mins.iter().fold(0i64, |a, m| a.saturating_add(*m));
        if total > length {
            return Err(c.fail(
                0,
                &format!("the length {length} is less than the sum of the minimums ({total})"),
            ));
        }
        let pools: Vec<Vec<char>> = [
            "0123456789",
            SPECIAL_CHARACTERS,
            "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
            "abcdefghijklmnopqrstuvwxyz",
        ]
        .iter()
        .map(|p| p.chars().filter(|ch| !avoid.contains(*ch)).collect())
        .collect();
        const NAMES: [&str; 4] = [
            "numbers",
            "special characters",
            "capitals",
            "lower case letters",
        ];
        let mut out: Vec<char> = Vec::with_capacity(length as usize);
        for (i, min) in mins.iter().enumerate() {
            if *min > 0 && pools[i].is_empty() {
                return Err(c.fail(
                    5,
                    &format!("charactersToAvoid excludes every one of the {}", NAMES[i]),
                ));
            }
            for _ in 0..*min {
                out.push(pools[i][self.rng.below(pools[i].len())]);
            }
        }
        // The rest comes from the kinds of character asked for (all kinds when none is).
        let asked: Vec<char> = if total > 0 {
            (0..4)
                .filter(|i| mins[*i] > 0)
                .flat_map(|i| pools[i].clone())
                .collect()
        } else {
            pools.concat()
        };
        if asked.is_empty() {
            return Err(c.fail(5, "charactersToAvoid excludes every character"));
        }
        while out.len() < length as usize {
            out.push(asked[self.rng.below(asked.len())]);
        }
        for i in (1..out.len()).rev() {
            let j = self.rng.below(i + 1);
            out.swap(i, j);
        }
        Ok(Value::Str(out.into_iter().collect()))
    }

    fn replace(&mut self, c: &Call, compiled: Option<&crate::ast::CompiledRegex>) -> R<Value> {
        let given = |i: usize| matches!(c.args.get(i), Some(Some(_)));
        let source = self.arg(c, 0)?;
        if !given(2) {
            let old = self.text_required(c, 1)?;
            if given(6) {
                let template = self.text_or(c, 6, "")?;
                return c.map_text(source, 0, |s| {
                    Ok(Value::Str(if old.is_empty() {
                        template.clone()
                    } else {
                        template.replace(&old, &s)
                    }))
                });
            }
            let new = self.text_or(c, 4, "")?;
            return c.map_text(source, 0, |s| {
                Ok(Value::Str(if old.is_empty() {
                    s
                } else {
                    s.replace(&old, &new)
                }))
            });
        }
        let re = match compiled {
            Some(re) => re.clone(),
            None => {
                let pattern = self.text_required(c, 2)?;
                parse::compile_regex(&pattern).map_err(|m| c.fail(2, &m))?
            }
        };
        let re = &re.0;
        if given(3) {
            let group = self.text_required(c, 3)?;
            if !re.capture_names().any(|n| n == Some(group.as_str())) {
                return Err(c.fail(
                    3,
                    &format!("the regexPattern has no group named \"{group}\" (write it as (?<{group}>…))"),
                ));
            }
            if given(5) {
                if !source.is_null_or_empty() {
                    return Ok(source);
                }
                let from = self.arg(c, 5)?;
                if from.is_nullish() {
                    return Ok(Value::Null);
                }
                let s = from.to_text().ok_or_else(|| c.bad(5, &from, "text"))?;
                return Ok(re
                    .captures(&s)
                    .and_then(|caps| caps.name(&group))
                    .map_or(Value::Null, |m| Value::Str(m.as_str().to_string())));
            }
            let new = self.text_or(c, 4, "")?;
            return c.map_text(source, 0, |s| {
                let mut out = String::with_capacity(s.len());
                let mut last = 0;
                for caps in re.captures_iter(&s) {
                    if let Some(m) = caps.name(&group)
                        && m.start() >= last
                    {
                        out.push_str(&s[last..m.start()]);
                        out.push_str(&new);
                        last = m.end();
                    }
                }
                out.push_str(&s[last..]);
                Ok(Value::Str(out))
            });
        }
        let replacement = dotnet_replacement(&self.text_or(c, 4, "")?);
        c.map_text(source, 0, |s| {
            Ok(Value::Str(
                re.replace_all(&s, replacement.as_str()).into_owned(),
            ))
        })
    }

    /// Evaluate argument `i` (0-based); an empty argument is null.
    fn arg(&mut self, c: &Call, i: usize) -> R<Value> {
        match c.args.get(i) {
            Some(Some(node)) => self.eval(node),
            _ => Ok(Value::Null),
        }
    }

    fn int(&mut self, c: &Call, i: usize) -> R<i64> {
        let v = self.arg(c, i)?;
        v.to_int().ok_or_else(|| c.bad(i, &v, "a whole number"))
    }

    fn text_or(&mut self, c: &Call, i: usize, default: &str) -> R<String> {
        let v = self.arg(c, i)?;
        if v.is_nullish() {
            return Ok(default.to_string());
        }
        v.to_text().ok_or_else(|| c.bad(i, &v, "text"))
    }

    fn text_required(&mut self, c: &Call, i: usize) -> R<String> {
        let v = self.arg(c, i)?;
        if v.is_nullish() {
            return Err(c.bad(i, &v, "text"));
        }
        v.to_text().ok_or_else(|| c.bad(i, &v, "text"))
    }

    /// A mode argument: one of `allowed`, written as the bare name or as a string.
    fn mode(&mut self, c: &Call, i: usize, allowed: &[Named], default: Named) -> R<Named> {
        let Some(Some(node)) = c.args.get(i) else {
            return Ok(default);
        };
        let found = match &node.kind {
            NodeKind::Named(n) => Some(*n),
            _ => {
                let v = self.eval(node)?;
                v.to_text().and_then(|s| {
                    allowed
                        .iter()
                        .copied()
                        .find(|n| n.name().eq_ignore_ascii_case(s.trim()))
                })
            }
        };
        match found {
            Some(n) if allowed.contains(&n) => Ok(n),
            _ => {
                let names: Vec<&str> = allowed.iter().map(|n| n.name()).collect();
                Err(c.fail(i, &format!("expected one of {}", names.join(", "))))
            }
        }
    }
}

/// One function call being evaluated, for argument access and error messages.
struct Call<'n> {
    func: Func,
    node: &'n Node,
    args: &'n [Option<Node>],
}

impl Call<'_> {
    fn offset(&self, i: usize) -> usize {
        match self.args.get(i) {
            Some(Some(n)) => n.span.start,
            _ => self.node.span.start,
        }
    }

    fn fail(&self, i: usize, message: &str) -> Stop {
        fail(self.offset(i), format!("{}: {message}", self.func.name()))
    }

    /// An argument of the wrong kind.
    fn bad(&self, i: usize, v: &Value, expected: &str) -> Stop {
        let got = match v {
            Value::Null => "null (no value)".to_string(),
            Value::Str(s) => format!("the string \"{s}\""),
            v => format!("a {} value{}", v.type_name(), hint_for(v)),
        };
        fail(
            self.offset(i),
            format!(
                "{}: argument {} must be {expected}, got {got}",
                self.func.name(),
                i + 1
            ),
        )
    }

    /// Apply `f` to the value, or to each value of a multi-valued one; null stays null.
    fn map_value(&self, v: Value, _i: usize, mut f: impl FnMut(Value) -> R<Value>) -> R<Value> {
        match v {
            Value::Null => Ok(Value::Null),
            Value::List(items) => items
                .into_iter()
                .filter(|v| !v.is_nullish())
                .map(&mut f)
                .collect::<R<Vec<_>>>()
                .map(Value::List),
            v => f(v),
        }
    }

    /// As `map_value`, on text.
    fn map_text(&self, v: Value, i: usize, mut f: impl FnMut(String) -> R<Value>) -> R<Value> {
        self.map_value(v, i, |v| {
            let s = v.to_text().ok_or_else(|| self.bad(i, &v, "text"))?;
            f(s)
        })
    }

    fn timestamp(&self, i: usize, v: &Value) -> R<jiff::Timestamp> {
        match v {
            Value::DateTime(t) => Ok(*t),
            v => match v.to_text() {
                Some(s) => datetime::parse_lenient(&s).map_err(|m| self.fail(i, &m)),
                None => Err(self.bad(i, v, "a date-time (use CDate or Now)")),
            },
        }
    }
}

fn hint_for(v: &Value) -> &'static str {
    match v {
        Value::List(_) => " (use Join or Item for multi-valued attributes)",
        Value::Bytes(_) => " (use ConvertToBase64 or StringFromSid for binary values)",
        _ => "",
    }
}

/// Position (in characters) of `needle` in `hay` at or after character `from`.
fn char_find(hay: &str, needle: &str, from: usize) -> Option<usize> {
    let start = hay.char_indices().nth(from).map(|(b, _)| b)?;
    if needle.is_empty() {
        return Some(from);
    }
    hay[start..]
        .find(needle)
        .map(|b| from + hay[start..start + b].chars().count())
}

/// .NET replacement syntax (`$1`, `${name}`, `$$`) to the regex crate's; any other `$` is
/// literal, as in .NET.
fn dotnet_replacement(r: &str) -> String {
    let mut out = String::with_capacity(r.len());
    let mut chars = r.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        match chars.peek() {
            Some('$') => {
                chars.next();
                out.push_str("$$");
            }
            Some('{') => {
                let rest: String = chars.clone().collect();
                match rest.find('}') {
                    Some(end) => {
                        out.push('$');
                        out.push_str(&rest[..=end]);
                        for _ in 0..rest[..=end].chars().count() {
                            chars.next();
                        }
                    }
                    None => out.push_str("$$"),
                }
            }
            Some(d) if d.is_ascii_digit() => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                out.push_str(&format!("${{{digits}}}"));
            }
            _ => out.push_str("$$"),
        }
    }
    out
}

/// Comparison in IIF conditions: numbers numerically, date-times chronologically, text
/// case-sensitively; null equals null and the empty string; ordering with null is false.
fn compare(op: CmpOp, l: &Value, r: &Value) -> Result<bool, String> {
    let single = |v: &Value| -> Result<Value, String> {
        match v {
            Value::List(items) if items.len() == 1 => Ok(items[0].clone()),
            Value::List(items) if items.is_empty() => Ok(Value::Null),
            Value::List(_) => Err(
                "can't compare a multi-valued attribute with a value: use Item, Join or Count"
                    .to_string(),
            ),
            Value::Bytes(_) => {
                Err("can't compare binary values: use ConvertToBase64 or StringFromSid".to_string())
            }
            v => Ok(v.clone()),
        }
    };
    let (l, r) = (single(l)?, single(r)?);
    let is_empty =
        |v: &Value| matches!(v, Value::Null) || matches!(v, Value::Str(s) if s.is_empty());
    if l.is_null() || r.is_null() {
        let equal = is_empty(&l) && is_empty(&r);
        return Ok(match op {
            CmpOp::Eq => equal,
            CmpOp::Ne => !equal,
            _ => false,
        });
    }
    let ordering: Option<Ordering> = match (&l, &r) {
        (Value::DateTime(a), b) | (b, Value::DateTime(a)) => {
            let other = match b {
                Value::DateTime(t) => Some(*t),
                v => v.to_text().and_then(|s| datetime::parse_lenient(&s).ok()),
            };
            let other =
                other.ok_or_else(|| format!("can't compare a date-time with {}", describe(b)))?;
            // Keep the operands' order.
            if matches!(l, Value::DateTime(_)) {
                Some(a.cmp(&other))
            } else {
                Some(other.cmp(a))
            }
        }
        (Value::Bool(a), b) | (b, Value::Bool(a)) => {
            let other = b
                .to_bool()
                .ok_or_else(|| format!("can't compare a boolean with {}", describe(b)))?;
            match op {
                CmpOp::Eq => return Ok(*a == other),
                CmpOp::Ne => return Ok(*a != other),
                _ => return Err("booleans can only be compared with = and <>".to_string()),
            }
        }
        (Value::Int(_), _) | (_, Value::Int(_)) => match (l.to_int(), r.to_int()) {
            (Some(a), Some(b)) => Some(a.cmp(&b)),
            _ => Some(
                l.to_text()
                    .unwrap_or_default()
                    .cmp(&r.to_text().unwrap_or_default()),
            ),
        },
        _ => Some(
            l.to_text()
                .unwrap_or_default()
                .cmp(&r.to_text().unwrap_or_default()),
        ),
    };
    let o = ordering.unwrap_or(Ordering::Equal);
    Ok(match op {
        CmpOp::Eq => o == Ordering::Equal,
        CmpOp::Ne => o != Ordering::Equal,
        CmpOp::Gt => o == Ordering::Greater,
        CmpOp::Ge => o != Ordering::Less,
        CmpOp::Lt => o == Ordering::Less,
        CmpOp::Le => o != Ordering::Greater,
    })
}

fn describe(v: &Value) -> String {
    match v {
        Value::Str(s) => format!("the string \"{s}\""),
        v => format!("a {} value", v.type_name()),
    }
}
