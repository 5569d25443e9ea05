//! Replace: plain text, a regular expression with .NET's replacement syntax, or a named group.

use crate::parse;
use crate::value::Value;

use super::call::Call;
use super::{Evaluator, R};

impl Evaluator<'_> {
    pub(super) fn replace(
        &mut self,
        c: &Call,
        compiled: Option<&crate::ast::CompiledRegex>,
    ) -> R<Value> {
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
