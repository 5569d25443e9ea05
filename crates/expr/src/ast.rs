//! The syntax tree, with a span on every node, and its printer (valid expression syntax).

use std::fmt;
use std::sync::Arc;

use crate::functions::Func;

/// Byte range in the expression text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

/// A node. Equality compares structure only (not spans), so a printed and re-parsed tree
/// equals the original.
#[derive(Debug, Clone)]
pub struct Node {
    pub kind: NodeKind,
    pub span: Span,
}

impl PartialEq for Node {
    fn eq(&self, other: &Node) -> bool {
        self.kind == other.kind
    }
}

/// Named constants that select a mode of a function (`vbBinaryCompare`, `UTF8`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Named {
    VbTextCompare,
    VbBinaryCompare,
    Unicode,
    Utf8,
    Ascii,
    CaseSensitive,
    IgnoreCase,
}

impl Named {
    pub const ALL: [Named; 7] = [
        Named::VbTextCompare,
        Named::VbBinaryCompare,
        Named::Unicode,
        Named::Utf8,
        Named::Ascii,
        Named::CaseSensitive,
        Named::IgnoreCase,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Named::VbTextCompare => "vbTextCompare",
            Named::VbBinaryCompare => "vbBinaryCompare",
            Named::Unicode => "Unicode",
            Named::Utf8 => "UTF8",
            Named::Ascii => "ASCII",
            Named::CaseSensitive => "CaseSensitive",
            Named::IgnoreCase => "IgnoreCase",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CmpOp {
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "<>",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
        }
    }
}

/// A regular expression compiled once, when the expression is parsed.
#[derive(Debug, Clone)]
pub struct CompiledRegex(pub Arc<regex::Regex>);

impl PartialEq for CompiledRegex {
    fn eq(&self, other: &CompiledRegex) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    Str(String),
    /// An integer; `hex` when written `&H…`.
    Int {
        value: i64,
        hex: bool,
    },
    Bool(bool),
    Null,
    IgnoreThisFlow,
    AuthoritativeNull,
    Named(Named),
    Attr(String),
    Call {
        func: Func,
        /// Empty arguments (`F(a, , c)`) are `None`.
        args: Vec<Option<Node>>,
        /// Replace's regexPattern, compiled at parse time when it is a string literal.
        regex: Option<CompiledRegex>,
    },
    Concat(Box<Node>, Box<Node>),
    Compare(CmpOp, Box<Node>, Box<Node>),
}

/// Print a string literal with `\` escapes.
pub fn quote(s: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            NodeKind::Str(s) => quote(s, f),
            NodeKind::Int { value, hex: true } => write!(f, "&H{:X}", *value as u64),
            NodeKind::Int { value, hex: false } => write!(f, "{value}"),
            NodeKind::Bool(b) => f.write_str(if *b { "True" } else { "False" }),
            NodeKind::Null => f.write_str("NULL"),
            NodeKind::IgnoreThisFlow => f.write_str("IgnoreThisFlow"),
            NodeKind::AuthoritativeNull => f.write_str("AuthoritativeNull"),
            NodeKind::Named(n) => f.write_str(n.name()),
            NodeKind::Attr(name) => write!(f, "[{name}]"),
            NodeKind::Call { func, args, .. } => {
                write!(f, "{}(", func.name())?;
                for (i, arg) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    if let Some(arg) = arg {
                        write!(f, "{arg}")?;
                    }
                }
                f.write_str(")")
            }
            NodeKind::Concat(left, right) => {
                // `&` is left-associative and binds tighter than comparisons.
                if matches!(left.kind, NodeKind::Compare(..)) {
                    write!(f, "({left})")?;
                } else {
                    write!(f, "{left}")?;
                }
                f.write_str(" & ")?;
                if matches!(right.kind, NodeKind::Compare(..) | NodeKind::Concat(..)) {
                    write!(f, "({right})")
                } else {
                    write!(f, "{right}")
                }
            }
            NodeKind::Compare(op, left, right) => {
                let side = |n: &Node, f: &mut fmt::Formatter<'_>| {
                    if matches!(n.kind, NodeKind::Compare(..)) {
                        write!(f, "({n})")
                    } else {
                        write!(f, "{n}")
                    }
                };
                side(left, f)?;
                write!(f, " {} ", op.symbol())?;
                side(right, f)
            }
        }
    }
}

impl Node {
    /// Visit every node, parents before children, arguments left to right.
    pub fn walk(&self, visit: &mut dyn FnMut(&Node)) {
        visit(self);
        match &self.kind {
            NodeKind::Call { args, .. } => {
                for arg in args.iter().flatten() {
                    arg.walk(visit);
                }
            }
            NodeKind::Concat(l, r) | NodeKind::Compare(_, l, r) => {
                l.walk(visit);
                r.walk(visit);
            }
            _ => {}
        }
    }
}
