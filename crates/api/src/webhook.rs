//! Webhook notifications, for sites without Prometheus: the job went into quarantine, a held
//! cycle waits for approval, a credential expires soon, a security event. Each event is
//! queued and sent by one background task — a cycle never waits for a webhook — with a few
//! retries; a notification that still fails is logged (by the webhook's name, never its URL)
//! and counted. The body carries what happened and what to do, never a secret.
//!
//! Formats: `generic` JSON; `teams`, a message with an Adaptive Card attachment as Teams'
//! incoming webhooks and Workflows take it (Microsoft Learn, "Create Incoming Webhooks":
//! "Send Adaptive Cards using an Incoming Webhook"); `slack`, Slack's incoming-webhook
//! `{"text", "blocks"}` (Slack API, "Sending messages using incoming webhooks").

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use exo_writeback_agent::config::{EventKind, Webhook, WebhookFormat};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::metrics::Metrics;

/// One notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    /// `critical` or `warning`.
    pub severity: &'static str,
    /// One sentence: what happened and what to do.
    pub summary: String,
    pub details: BTreeMap<String, String>,
    /// Events with the same key are not sent again within `repeat_after`.
    pub key: String,
    pub repeat_after: SignedDuration,
    pub time: Timestamp,
}

impl Event {
    pub fn new(kind: EventKind, severity: &'static str, summary: impl Into<String>) -> Event {
        Event {
            kind,
            severity,
            summary: summary.into(),
            details: BTreeMap::new(),
            key: kind.as_str().to_string(),
            repeat_after: SignedDuration::from_hours(1),
            time: Timestamp::now(),
        }
    }

    pub fn detail(mut self, name: &str, value: impl ToString) -> Event {
        self.details.insert(name.to_string(), value.to_string());
        self
    }

    pub fn keyed(mut self, key: impl Into<String>, repeat_after: SignedDuration) -> Event {
        self.key = key.into();
        self.repeat_after = repeat_after;
        self
    }
}

/// The sender of notifications; cheap to clone. Without webhooks, events are dropped.
#[derive(Clone)]
pub struct Notifier {
    queue: mpsc::Sender<Event>,
    hooks: Arc<RwLock<Vec<Webhook>>>,
}

/// How many events wait at most; beyond, new ones are dropped (and logged).
const QUEUE: usize = 256;

/// Tries per notification, and the waits between them.
const WAITS: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(5),
    Duration::from_secs(25),
];

impl Notifier {
    /// Starts the sending task (on the current runtime).
    pub fn start(hooks: Vec<Webhook>, metrics: Arc<Metrics>, agent: AgentLabel) -> Notifier {
        let (queue, rx) = mpsc::channel(QUEUE);
        let hooks = Arc::new(RwLock::new(hooks));
        tokio::spawn(deliver(rx, hooks.clone(), metrics, agent));
        Notifier { queue, hooks }
    }

    /// Queues an event; never waits.
    pub fn send(&self, event: Event) {
        if self.hooks.read().map(|h| h.is_empty()).unwrap_or(true) {
            return;
        }
        if let Err(e) = self.queue.try_send(event) {
            tracing::warn!(error = %e, "a webhook notification was dropped: too many are waiting");
        }
    }

    /// The webhooks of a reloaded configuration.
    pub fn reload(&self, hooks: Vec<Webhook>) {
        if let Ok(mut h) = self.hooks.write() {
            *h = hooks;
        }
    }
}

/// Who sends: named in every body.
#[derive(Debug, Clone)]
pub struct AgentLabel {
    pub host: String,
    pub version: String,
}

async fn deliver(
    mut rx: mpsc::Receiver<Event>,
    hooks: Arc<RwLock<Vec<Webhook>>>,
    metrics: Arc<Metrics>,
    agent: AgentLabel,
) {
    let http = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhooks disabled: cannot build an HTTP client");
            return;
        }
    };
    let mut sent: HashMap<String, Timestamp> = HashMap::new();
    while let Some(event) = rx.recv().await {
        if let Some(last) = sent.get(&event.key)
            && event.time.duration_since(*last) < event.repeat_after
        {
            continue;
        }
        sent.insert(event.key.clone(), event.time);
        let targets: Vec<Webhook> = hooks
            .read()
            .map(|h| {
                h.iter()
                    .filter(|w| w.events.contains(&event.kind))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for hook in targets {
            let body = body(hook.format, &event, &agent);
            if !post(&http, &hook, &body).await {
                metrics.webhook_failed();
            }
        }
    }
}

/// Posts with retries; `false` when every try failed.
async fn post(http: &reqwest::Client, hook: &Webhook, body: &Value) -> bool {
    for (attempt, wait) in std::iter::once(Duration::ZERO)
        .chain(WAITS.iter().copied())
        .enumerate()
    {
        tokio::time::sleep(wait).await;
        let error = match http.post(hook.url.expose()).json(body).send().await {
            Ok(r) if r.status().is_success() => return true,
            Ok(r) => format!("HTTP {}", r.status().as_u16()),
            // The error's text may hold the URL, which holds the webhook's key.
            Err(e) if e.is_timeout() => "timed out".to_string(),
            Err(e) if e.is_connect() => "cannot connect".to_string(),
            Err(_) => "the request failed".to_string(),
        };
        tracing::warn!(webhook = %hook.name, attempt = attempt + 1, %error, "a webhook notification was not accepted");
    }
    tracing::error!(webhook = %hook.name, "a webhook notification could not be delivered; giving up on it");
    false
}

fn title(event: &Event) -> String {
    let what = match event.kind {
        EventKind::Quarantine => "the job is in quarantine",
        EventKind::Held => "a cycle waits for approval",
        EventKind::CredentialExpiry => "a credential expires soon",
        EventKind::Security => "security event",
    };
    format!("exo-writeback: {what}")
}

/// The body of `event` in `format`.
pub fn body(format: WebhookFormat, event: &Event, agent: &AgentLabel) -> Value {
    match format {
        WebhookFormat::Generic => json!({
            "event": event.kind.as_str(),
            "severity": event.severity,
            "summary": event.summary,
            "details": event.details,
            "time": event.time.to_string(),
            "agent": {"host": agent.host, "version": agent.version},
        }),
        WebhookFormat::Teams => {
            let mut facts: Vec<Value> = event
                .details
                .iter()
                .map(|(k, v)| json!({"title": k, "value": v}))
                .collect();
            facts.push(json!({"title": "agent", "value": agent.host}));
            json!({
                "type": "message",
                "attachments": [{
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": null,
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.4",
                        "body": [
                            {"type": "TextBlock", "text": title(event), "weight": "Bolder",
                             "size": "Medium", "wrap": true,
                             "color": if event.severity == "critical" { "Attention" } else { "Warning" }},
                            {"type": "TextBlock", "text": event.summary, "wrap": true},
                            {"type": "FactSet", "facts": facts},
                        ],
                    },
                }],
            })
        }
        WebhookFormat::Slack => {
            let fields: Vec<Value> = event
                .details
                .iter()
                .take(9)
                .map(|(k, v)| json!({"type": "mrkdwn", "text": format!("*{k}*\n{v}")}))
                .chain(std::iter::once(
                    json!({"type": "mrkdwn", "text": format!("*agent*\n{}", agent.host)}),
                ))
                .collect();
            json!({
                "text": format!("{}: {}", title(event), event.summary),
                "blocks": [
                    {"type": "header", "text": {"type": "plain_text", "text": title(event)}},
                    {"type": "section", "text": {"type": "mrkdwn", "text": event.summary}},
                    {"type": "section", "fields": fields},
                ],
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_format_carries_the_event_and_what_to_do() {
        let agent = AgentLabel {
            host: "wb1".into(),
            version: "0.1.0".into(),
        };
        let e = Event::new(
            EventKind::Held,
            "warning",
            "cycle 7 is held: review and approve it",
        )
        .detail("cycle", 7);
        let generic = body(WebhookFormat::Generic, &e, &agent);
        assert_eq!(generic["event"], "held");
        assert_eq!(generic["details"]["cycle"], "7");
        let teams = body(WebhookFormat::Teams, &e, &agent);
        assert_eq!(
            teams["attachments"][0]["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        assert_eq!(teams["attachments"][0]["content"]["type"], "AdaptiveCard");
        let slack = body(WebhookFormat::Slack, &e, &agent);
        assert!(
            slack["text"]
                .as_str()
                .is_some_and(|t| t.contains("cycle 7 is held")),
            "{slack}"
        );
        assert_eq!(slack["blocks"][0]["type"], "header");
    }
}
