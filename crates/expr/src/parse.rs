//! The parser: a hand-written recursive descent over the text, so every node has a span and
//! every error says what was expected where.
//!
//! ```text
//! expression := concat [ ("=" | "<>" | ">" | ">=" | "<" | "<=") concat ]
//! concat     := primary { "&" primary }
//! primary    := "\"" chars "\"" | ["-"] digits | "&H" hexdigits | "[" name "]"
//!             | Name "(" [ argument { "," argument } ] ")" | Constant | "(" expression ")"
//! argument   := expression | (nothing: an empty argument, where the function allows one)
//! ```

use std::sync::Arc;

use crate::ParseError;
use crate::ast::{CmpOp, CompiledRegex, Named, Node, NodeKind, Span};
use crate::functions::{self, Func};

/// Deeper nesting than this is refused (it would only come from generated or hostile input).
const MAX_DEPTH: usize = 100;

pub fn parse(text: &str) -> Result<Node, ParseError> {
    let mut p = Parser {
        text,
        pos: 0,
        depth: 0,
    };
    p.skip_ws();
    if p.at_end() {
        return Err(p.error(0, "the expression is empty: expected a function call, an attribute like [mail], or a string like \"text\""));
    }
    let node = p.expression()?;
    p.skip_ws();
    if !p.at_end() {
        let what = p.describe_here();
        return Err(p.error(
            p.pos,
            &format!("expected the end of the expression, `&` or a comparison, found {what}"),
        ));
    }
    Ok(node)
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn error(&self, offset: usize, message: &str) -> ParseError {
        ParseError {
            message: message.to_string(),
            offset,
        }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.text.len()
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_whitespace() {
                self.pos += c.len_utf8();
            } else {
                break;
            }
        }
    }

    fn eat(&mut self, s: &str) -> bool {
        if self.rest().starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    /// What is at the current position, for "found …" in messages.
    fn describe_here(&self) -> String {
        match self.peek() {
            None => "the end of the expression".to_string(),
            Some(c) => format!("`{c}`"),
        }
    }

    fn expression(&mut self) -> Result<Node, ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(
                self.pos,
                &format!("the expression is nested more than {MAX_DEPTH} levels deep"),
            ));
        }
        let left = self.concat()?;
        self.skip_ws();
        let result = match self.comparison_op() {
            None => left,
            Some(op) => {
                self.skip_ws();
                let right = self.concat()?;
                self.skip_ws();
                let at = self.pos;
                if self.comparison_op().is_some() {
                    return Err(self.error(
                        at,
                        "comparisons can't be chained: compare two values, and nest IIF for more conditions",
                    ));
                }
                let span = Span {
                    start: left.span.start,
                    end: right.span.end,
                };
                Node {
                    kind: NodeKind::Compare(op, Box::new(left), Box::new(right)),
                    span,
                }
            }
        };
        self.depth -= 1;
        Ok(result)
    }

    fn comparison_op(&mut self) -> Option<CmpOp> {
        for (sym, op) in [
            ("<>", CmpOp::Ne),
            (">=", CmpOp::Ge),
            ("<=", CmpOp::Le),
            ("=", CmpOp::Eq),
            (">", CmpOp::Gt),
            ("<", CmpOp::Lt),
        ] {
            if self.eat(sym) {
                return Some(op);
            }
        }
        None
    }

    fn concat(&mut self) -> Result<Node, ParseError> {
        let depth_before = self.depth;
        let mut left = self.primary()?;
        loop {
            self.skip_ws();
            if self.peek() != Some('&') {
                self.depth = depth_before;
                return Ok(left);
            }
            // Each `&` nests the tree one level deeper (left-associative).
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err(self.error(
                    self.pos,
                    &format!("the expression is nested more than {MAX_DEPTH} levels deep (count each `&` as a level)"),
                ));
            }
            self.pos += 1;
            self.skip_ws();
            let right = self.primary()?;
            let span = Span {
                start: left.span.start,
                end: right.span.end,
            };
            left = Node {
                kind: NodeKind::Concat(Box::new(left), Box::new(right)),
                span,
            };
        }
    }

    fn primary(&mut self) -> Result<Node, ParseError> {
        let start = self.pos;
        let node = |kind, end| Node {
            kind,
            span: Span { start, end },
        };
        match self.peek() {
            None => Err(self.error(
                start,
                "unexpected end of the expression: expected a value (a function call, an attribute like [mail], a string or a number)",
            )),
            Some('"') => {
                let s = self.string()?;
                Ok(node(NodeKind::Str(s), self.pos))
            }
            Some('[') => {
                self.pos += 1;
                let Some(close) = self.rest().find(']') else {
                    return Err(self.error(
                        start,
                        "unterminated attribute reference: expected `]` to close `[`",
                    ));
                };
                let name = self.rest()[..close].trim().to_string();
                if name.is_empty() {
                    return Err(self.error(
                        start,
                        "empty attribute reference `[]`: expected an attribute name like [mail]",
                    ));
                }
                if let Some(bad) = name.find(['[', '"']) {
                    return Err(self.error(
                        self.pos + bad,
                        "unterminated attribute reference: expected `]` before this",
                    ));
                }
                self.pos += close + 1;
                Ok(node(NodeKind::Attr(name), self.pos))
            }
            Some('&') => {
                if self.rest()[1..].starts_with(['H', 'h']) {
                    self.pos += 2;
                    let digits_start = self.pos;
                    while self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                        self.pos += 1;
                    }
                    let digits = &self.text[digits_start..self.pos];
                    if digits.is_empty() {
                        return Err(self.error(
                            digits_start,
                            "expected hexadecimal digits after `&H` (for example &HFF)",
                        ));
                    }
                    let value = u64::from_str_radix(digits, 16).map_err(|_| {
                        self.error(start, "hexadecimal number too large: at most 16 digits")
                    })?;
                    self.no_letter_after_number()?;
                    Ok(node(
                        NodeKind::Int {
                            value: value as i64,
                            hex: true,
                        },
                        self.pos,
                    ))
                } else {
                    Err(self.error(
                        start,
                        "expected a value before `&` (`&` joins two values: \"a\" & [b])",
                    ))
                }
            }
            Some(c) if c.is_ascii_digit() || c == '-' => {
                if c == '-' {
                    self.pos += 1;
                    if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                        return Err(self.error(start, "expected a number after `-`"));
                    }
                }
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.pos += 1;
                }
                if self.peek() == Some('.')
                    && self.rest()[1..].starts_with(|c: char| c.is_ascii_digit())
                {
                    return Err(self.error(
                        start,
                        "decimal numbers are not supported: expected a whole number",
                    ));
                }
                let value: i64 = self.text[start..self.pos].parse().map_err(|_| {
                    self.error(start, "number out of range (a 64-bit signed integer)")
                })?;
                self.no_letter_after_number()?;
                Ok(node(NodeKind::Int { value, hex: false }, self.pos))
            }
            Some('(') => {
                self.pos += 1;
                self.skip_ws();
                let mut inner = self.expression()?;
                self.skip_ws();
                if !self.eat(")") {
                    let what = self.describe_here();
                    return Err(self.error(
                        self.pos,
                        &format!("expected `)` to close the `(` at offset {start}, found {what}"),
                    ));
                }
                inner.span = Span {
                    start,
                    end: self.pos,
                };
                Ok(inner)
            }
            Some(c) if c.is_alphabetic() || c == '_' => {
                while self
                    .peek()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_')
                {
                    self.pos += self.peek().map_or(1, char::len_utf8);
                }
                let name = &self.text[start..self.pos];
                let after_name = self.pos;
                self.skip_ws();
                if self.peek() == Some('(') {
                    self.pos += 1;
                    return self.call(name, start);
                }
                self.pos = after_name;
                let kind = constant(name).ok_or_else(|| {
                    if Func::lookup(name).is_some() {
                        self.error(
                            after_name,
                            &format!("expected `(` after the function name {name}"),
                        )
                    } else {
                        self.error(
                            start,
                            &format!(
                                "unknown name `{name}`: expected a function call like {name}(…), an attribute like [{name}], a string like \"{name}\", or one of NULL, IgnoreThisFlow, AuthoritativeNull, True, False"
                            ),
                        )
                    }
                })?;
                Ok(node(kind, self.pos))
            }
            Some(c) => Err(self.error(
                start,
                &format!(
                    "expected a value (a function call, an attribute like [mail], a string or a number), found `{c}`"
                ),
            )),
        }
    }

    fn no_letter_after_number(&self) -> Result<(), ParseError> {
        match self.peek() {
            Some(c) if c.is_alphanumeric() || c == '_' => {
                Err(self.error(self.pos, &format!("unexpected `{c}` right after a number")))
            }
            _ => Ok(()),
        }
    }

    /// A string literal; `\"` is a quote and `\\` a backslash. Any other backslash is kept
    /// as written (so a regular expression like "\d+" means what it says).
    fn string(&mut self) -> Result<String, ParseError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.error(
                    start,
                    "unterminated string: expected a closing `\"` (write \\\" for a quote inside a string)",
                ));
            };
            self.pos += c.len_utf8();
            match c {
                '"' => return Ok(out),
                '\\' => match self.peek() {
                    Some('"') => {
                        out.push('"');
                        self.pos += 1;
                    }
                    Some('\\') => {
                        out.push('\\');
                        self.pos += 1;
                    }
                    _ => out.push('\\'),
                },
                c => out.push(c),
            }
        }
    }

    fn call(&mut self, name: &str, start: usize) -> Result<Node, ParseError> {
        let func = match Func::lookup(name) {
            Some(f) => f,
            None => {
                if let Some(known) = functions::APP_PROVISIONING_ONLY
                    .iter()
                    .find(|f| f.eq_ignore_ascii_case(name))
                {
                    return Err(self.error(
                        start,
                        &format!(
                            "{known} is not supported in writeback mappings: it only makes sense when provisioning applications"
                        ),
                    ));
                }
                let hint = functions::suggest(name)
                    .map(|s| format!(" (did you mean {s}?)"))
                    .unwrap_or_default();
                return Err(self.error(start, &format!("unknown function `{name}`{hint}")));
            }
        };
        let mut args: Vec<Option<Node>> = Vec::new();
        let mut arg_offsets: Vec<usize> = Vec::new();
        self.skip_ws();
        if !self.eat(")") {
            loop {
                self.skip_ws();
                arg_offsets.push(self.pos);
                if matches!(self.peek(), Some(',') | Some(')')) {
                    args.push(None);
                } else {
                    args.push(Some(self.expression()?));
                    self.skip_ws();
                }
                if self.eat(",") {
                    continue;
                }
                if self.eat(")") {
                    break;
                }
                let what = self.describe_here();
                return Err(self.error(
                    self.pos,
                    &format!(
                        "expected `,` or `)` after argument {} of {}, found {what}",
                        args.len(),
                        func.name()
                    ),
                ));
            }
        }
        let end = self.pos;
        let sig = func.signature();
        let n = args.len();
        if n < sig.min || sig.max.is_some_and(|max| n > max) {
            let expected = match sig.max {
                Some(max) if max == sig.min => format!("{max}"),
                Some(max) => format!("{} to {max}", sig.min),
                None => format!("at least {}", sig.min),
            };
            let plural = if expected == "1" { "" } else { "s" };
            return Err(self.error(
                start,
                &format!(
                    "{} takes {expected} argument{plural}, got {n}: {}",
                    func.name(),
                    sig.usage
                ),
            ));
        }
        for (i, arg) in args.iter().enumerate() {
            if arg.is_none() && !sig.omissible.contains(&(i + 1)) {
                return Err(self.error(
                    arg_offsets[i],
                    &format!(
                        "argument {} of {} can't be empty: {}",
                        i + 1,
                        func.name(),
                        sig.usage
                    ),
                ));
            }
        }
        let mut regex = None;
        match func {
            Func::Switch if !n.is_multiple_of(2) => {
                return Err(self.error(
                    start,
                    &format!(
                        "Switch takes source, defaultValue and then key/value pairs, so an even number of arguments; got {n}: {}",
                        sig.usage
                    ),
                ));
            }
            Func::Replace => regex = self.check_replace(&args, start)?,
            _ => {}
        }
        Ok(Node {
            kind: NodeKind::Call { func, args, regex },
            span: Span { start, end },
        })
    }

    /// Replace has several documented forms, chosen by which arguments are given.
    fn check_replace(
        &self,
        args: &[Option<Node>],
        start: usize,
    ) -> Result<Option<CompiledRegex>, ParseError> {
        let given = |i: usize| args.get(i - 1).is_some_and(Option::is_some);
        let forms = "Replace(source, oldValue, , , replacementValue, , ) or Replace(source, oldValue, , , , , template) or Replace(source, , regexPattern, , replacementValue, , ) or Replace(source, , regexPattern, regexGroupName, replacementValue, , ) or Replace(source, , regexPattern, regexGroupName, , replacementAttributeName, )";
        let fail = |what: &str| Err(self.error(start, &format!("Replace {what}: use {forms}")));
        if given(3) {
            if given(2) {
                return fail("takes either oldValue or regexPattern, not both");
            }
            if given(7) {
                return fail("uses template only with oldValue");
            }
            if given(4) {
                if !given(5) && !given(6) {
                    return fail(
                        "with regexPattern and regexGroupName needs replacementValue or replacementAttributeName",
                    );
                }
            } else if !given(5) {
                return fail("with regexPattern needs replacementValue");
            } else if given(6) {
                return fail("uses replacementAttributeName only with regexGroupName");
            }
        } else {
            if !given(2) {
                return fail("needs oldValue or regexPattern");
            }
            if given(4) || given(6) {
                return fail(
                    "uses regexGroupName and replacementAttributeName only with regexPattern",
                );
            }
            if given(5) == given(7) {
                return fail("with oldValue needs exactly one of replacementValue and template");
            }
        }
        match args.get(2) {
            Some(Some(Node {
                kind: NodeKind::Str(pattern),
                span,
            })) => match compile_regex(pattern) {
                Ok(re) => Ok(Some(re)),
                Err(message) => Err(self.error(span.start, &message)),
            },
            _ => Ok(None),
        }
    }
}

pub fn compile_regex(pattern: &str) -> Result<CompiledRegex, String> {
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map(|re| CompiledRegex(Arc::new(re)))
        .map_err(|e| {
            let detail = e.to_string();
            let detail = detail.lines().last().unwrap_or("").trim().to_string();
            format!(
                "invalid regular expression in Replace: {detail} (look-around and back-references are not supported)"
            )
        })
}

fn constant(name: &str) -> Option<NodeKind> {
    let is = |s: &str| name.eq_ignore_ascii_case(s);
    if is("NULL") || is("Nothing") {
        Some(NodeKind::Null)
    } else if is("IgnoreThisFlow") {
        Some(NodeKind::IgnoreThisFlow)
    } else if is("AuthoritativeNull") {
        Some(NodeKind::AuthoritativeNull)
    } else if is("True") {
        Some(NodeKind::Bool(true))
    } else if is("False") {
        Some(NodeKind::Bool(false))
    } else {
        Named::ALL
            .into_iter()
            .find(|n| is(n.name()))
            .map(NodeKind::Named)
    }
}
