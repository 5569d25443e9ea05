//! `exo-writeback expr`: evaluate a mapping expression against given source values — the
//! administrator's "test this expression".
//!
//! Exit status: 0 with the result; 1 when the expression does not parse or fails to
//! evaluate (the message shows the expression with a caret under the position); 2 for bad
//! arguments or an unreadable `--mailbox` file.

use crate::out::outln;
use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use exo_writeback_expr::{EvalContext, Expr, Outcome, Source, Value};

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  exo-writeback expr 'Join(\",\", [CustomAttribute1], [CustomAttribute2])' --attr CustomAttribute1=a --attr CustomAttribute2=b
  exo-writeback expr 'IIF(IsNullOrEmpty([LegacyExchangeDN]), NULL, \"x500:\" & [LegacyExchangeDN])' --mailbox mailbox.json
  exo-writeback expr 'Count([proxyAddresses])' --attr proxyAddresses=SMTP:a@contoso.com --attr proxyAddresses=smtp:b@contoso.com")]
pub struct Args {
    /// The expression, in the provisioning expression language (quote it for the shell).
    pub expression: String,

    /// A source attribute as NAME=VALUE. Repeat a name for a multi-valued attribute; NAME
    /// alone is an attribute without a value (null). Overrides --mailbox properties.
    #[arg(long = "attr", value_name = "NAME=VALUE")]
    pub attrs: Vec<String>,

    /// A Get-Mailbox JSON object (PascalCase properties as Exchange Online returns them, or a
    /// response whose `value` array holds one) whose properties are the source.
    #[arg(long, value_name = "FILE.json")]
    pub mailbox: Option<PathBuf>,

    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,

    /// What Now() returns (RFC 3339, e.g. 2021-08-25T17:41:18Z); default: the current time.
    #[arg(long, value_name = "TIMESTAMP")]
    pub now: Option<String>,

    /// Seed for Guid() and RandomString(), for repeatable results; default: from the clock.
    #[arg(long)]
    pub seed: Option<u64>,
}

/// Source values by lower-case name.
struct Values(HashMap<String, Value>);

impl Source for Values {
    /// A given value; else, for a Get-Mailbox property the agent reads, null — Microsoft's
    /// reference: "For an attribute, a Null is expressed by the absence of the attribute"
    /// (IsNull). Any other name is unknown (a typo must not read as null; the agent refuses
    /// it in a mapping too).
    fn get(&self, name: &str) -> Option<Value> {
        self.0.get(&name.to_lowercase()).cloned().or_else(|| {
            exo_writeback_core::mailbox::Mailbox::default()
                .property(name)
                .map(|_| Value::Null)
        })
    }
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut values = HashMap::new();
    if let Some(path) = &args.mailbox {
        values = read_mailbox(path)?;
    }
    for (name, value) in parse_attrs(&args.attrs)? {
        values.insert(name.to_lowercase(), value);
    }
    let now = match &args.now {
        Some(t) => t.parse::<jiff::Timestamp>().with_context(|| {
            format!("--now {t:?} is not an RFC 3339 timestamp like 2021-08-25T17:41:18Z")
        })?,
        None => jiff::Timestamp::now(),
    };
    let seed = args
        .seed
        .unwrap_or_else(|| now.as_nanosecond() as u64 ^ u64::from(std::process::id()));
    let ctx = EvalContext { now, seed };
    let text = &args.expression;

    let expr = match Expr::parse(text) {
        Ok(e) => e,
        Err(e) => return Ok(fail(&args, "parse", &e.message, e.offset, &e.render(text))),
    };
    match expr.eval(&Values(values), &ctx) {
        Ok(outcome) => {
            let mut out = std::io::stdout().lock();
            if args.json {
                writeln!(out, "{}", outcome_json(&outcome))?;
            } else {
                write!(out, "{}", outcome_text(&outcome))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            let mut rendered = e.render(text);
            if e.message.starts_with("unknown attribute") {
                rendered.push_str("\nhint: it is not a Get-Mailbox property the agent reads; give it with --attr NAME=VALUE, or --mailbox FILE.json");
            }
            Ok(fail(&args, "evaluation", &e.message, e.offset, &rendered))
        }
    }
}

fn fail(args: &Args, stage: &str, message: &str, offset: usize, rendered: &str) -> ExitCode {
    if args.json {
        let json = serde_json::json!({
            "outcome": "error",
            "stage": stage,
            "message": message,
            "offset": offset,
        });
        outln!("{json}");
    }
    eprintln!("{rendered}");
    ExitCode::from(1)
}

/// `NAME=VALUE` pairs; a repeated name builds a multi-valued attribute, in order.
fn parse_attrs(raw: &[String]) -> anyhow::Result<Vec<(String, Value)>> {
    let mut out: Vec<(String, Value)> = Vec::new();
    for item in raw {
        let (name, value) = match item.split_once('=') {
            Some((n, v)) => (n.trim(), Value::Str(v.to_string())),
            None => (item.trim(), Value::Null),
        };
        if name.is_empty() || name.contains(['[', ']']) {
            bail!("--attr {item:?}: expected NAME=VALUE, e.g. --attr CustomAttribute1=Sales");
        }
        match out.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            None => out.push((name.to_string(), value)),
            Some((_, existing)) => {
                let previous = std::mem::replace(existing, Value::Null);
                *existing = match previous {
                    Value::List(mut items) => {
                        items.push(value);
                        Value::List(items)
                    }
                    Value::Null => Value::List(vec![value]),
                    single => Value::List(vec![single, value]),
                };
            }
        }
    }
    Ok(out)
}

fn read_mailbox(path: &PathBuf) -> anyhow::Result<HashMap<String, Value>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --mailbox {}", path.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("--mailbox {} is not JSON", path.display()))?;
    let object = match &json {
        serde_json::Value::Object(o) => match o.get("value") {
            Some(serde_json::Value::Array(items)) => match items.first() {
                Some(serde_json::Value::Object(first)) => first,
                _ => bail!(
                    "--mailbox {}: the response's `value` holds no mailbox object",
                    path.display()
                ),
            },
            _ => o,
        },
        _ => bail!(
            "--mailbox {}: expected a JSON object with Get-Mailbox properties",
            path.display()
        ),
    };
    Ok(object
        .iter()
        .filter(|(k, _)| !k.contains('@'))
        .map(|(k, v)| (k.to_lowercase(), from_json(v, true)))
        .collect())
}

/// A JSON property as an expression value; nested objects are kept as their JSON text.
fn from_json(v: &serde_json::Value, top: bool) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Str(n.to_string()),
        },
        serde_json::Value::String(s) => Value::Str(s.clone()),
        serde_json::Value::Array(items) if top => {
            Value::List(items.iter().map(|i| from_json(i, false)).collect())
        }
        other => Value::Str(other.to_string()),
    }
}

fn outcome_text(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Value(Value::List(items)) => items.iter().map(|v| format!("{v}\n")).collect(),
        Outcome::Value(v) => format!("{v}\n"),
        Outcome::IgnoreFlow => "IgnoreThisFlow (the target attribute is left unchanged)\n".into(),
        Outcome::AuthoritativeNull => {
            "AuthoritativeNull (the target attribute is cleared)\n".into()
        }
    }
}

fn outcome_json(outcome: &Outcome) -> serde_json::Value {
    match outcome {
        Outcome::Value(v) => serde_json::json!({
            "outcome": "value",
            "type": v.type_name(),
            "value": value_json(v),
        }),
        Outcome::IgnoreFlow => serde_json::json!({ "outcome": "ignore_flow" }),
        Outcome::AuthoritativeNull => serde_json::json!({ "outcome": "authoritative_null" }),
    }
}

fn value_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Str(s) => s.clone().into(),
        Value::Int(i) => (*i).into(),
        Value::Bool(b) => (*b).into(),
        // Binary as base64; date-times as Microsoft's service renders them
        // (`M/d/yyyy h:mm:ss tt`, UTC: the CDate, DateAdd and Now examples of its reference).
        Value::Bytes(_) | Value::DateTime(_) => v.to_string().into(),
        Value::List(items) => items.iter().map(value_json).collect(),
    }
}
