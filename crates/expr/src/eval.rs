//! The evaluator: walks the tree once per source. Arguments are evaluated lazily where the
//! function chooses between them (IIF, Switch, Coalesce), so `IgnoreThisFlow` or `Error` in
//! a branch not taken has no effect.
//!
//! The functions live by family under `eval/` (`logic`, `strings`, `lists`, `dates`,
//! `encoding`, `random`, `replace`); `call` is one call's arguments and errors, `compare` the
//! operators of IIF conditions.

use crate::ast::{Named, Node, NodeKind};
use crate::functions::Func;
use crate::value::Value;
use crate::{EvalContext, EvalError, Source};

use call::{Call, hint_for};
use random::Rng;

mod call;
mod compare;
mod dates;
mod encoding;
mod lists;
mod logic;
mod random;
mod replace;
mod strings;

/// Why evaluation stopped before producing a value.
pub enum Stop {
    Error(EvalError),
    IgnoreFlow,
    AuthoritativeNull,
}

type R<T> = Result<T, Stop>;

pub struct Evaluator<'a> {
    source: &'a dyn Source,
    ctx: &'a EvalContext,
    rng: Rng,
}

fn fail(offset: usize, message: String) -> Stop {
    Stop::Error(EvalError { message, offset })
}

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
                compare::compare(*op, &lv, &rv)
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

    fn call(&mut self, c: &Call, regex: Option<&crate::ast::CompiledRegex>) -> R<Value> {
        use Func as F;
        // Each function is its own fn (one file per family): in unoptimized builds a single
        // large match would give every nesting level the stack frame of all functions together.
        match c.func {
            F::Append => strings::append(self, c),
            F::BitAnd => logic::bit_and(self, c),
            F::CBool => logic::cbool(self, c),
            F::CDate => dates::cdate(self, c),
            F::Coalesce => logic::coalesce(self, c),
            F::Contains => strings::contains(self, c),
            F::ConvertFromBase64 => encoding::convert_from_base64(self, c),
            F::ConvertToBase64 => encoding::convert_to_base64(self, c),
            F::ConvertToUTF8Hex => encoding::convert_to_utf8_hex(self, c),
            F::Count => lists::count(self, c),
            F::CRef | F::Redact => logic::pass_through(self, c),
            F::CStr => logic::cstr(self, c),
            F::DateAdd => dates::date_add(self, c),
            F::DateDiff => dates::date_diff(self, c),
            F::DateFromNum => dates::date_from_num(self, c),
            F::DNComponent => strings::dn_component(self, c),
            F::Error => logic::error(self, c),
            F::FormatDateTime => dates::format_date_time(self, c),
            F::Guid => random::guid(self),
            F::IgnoreFlowIfNullOrEmpty => logic::ignore_flow_if_null_or_empty(self, c),
            F::Iif => logic::iif(self, c),
            F::InStr => strings::instr(self, c),
            F::IsNull => logic::is_null(self, c),
            F::IsNullOrEmpty => logic::is_null_or_empty(self, c),
            F::IsPresent => logic::is_present(self, c),
            F::IsString => logic::is_string(self, c),
            F::Item => lists::item(self, c),
            F::Join => lists::join(self, c),
            F::Left => strings::left(self, c),
            F::Mid => strings::mid(self, c),
            F::NormalizeDiacritics => strings::normalize_diacritics(self, c),
            F::Not => logic::not(self, c),
            F::Now => dates::now(self),
            F::NumFromDate => dates::num_from_date(self, c),
            F::PCase => strings::pcase(self, c),
            F::RandomString => self.random_string(c),
            F::RemoveDuplicates => lists::remove_duplicates(self, c),
            F::Replace => self.replace(c, regex),
            F::Split => lists::split(self, c),
            F::StringFromSid => encoding::string_from_sid(self, c),
            F::StripSpaces => strings::strip_spaces(self, c),
            F::Switch => logic::switch(self, c),
            F::ToLower | F::ToUpper => strings::change_case(self, c),
            F::Trim => strings::trim(self, c),
            F::Word => strings::word(self, c),
        }
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
