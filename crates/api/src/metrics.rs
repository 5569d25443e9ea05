//! Prometheus metrics (`prometheus-client`), served at `/metrics` in the text exposition
//! format. Cycles and their objects are counted as the scheduler reports each turn; the
//! state's gauges (escrow, quarantine, held cycles, the watermark's lag, the last successful
//! cycle) are read from the store at each scrape, so they hold after a restart; the edges'
//! requests come from the agent's observer (`exo_writeback_agent::observe`).

use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use exo_writeback_agent::observe::{ExoEvent, Observer};
use exo_writeback_core::provisioning::{CycleStatus, JobState};
use exo_writeback_engine::CycleReport;
use exo_writeback_store_sqlite::{CycleStore, EscrowStore, JobStore, PauseStore, StagingStore};
use jiff::Timestamp;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CycleLabels {
    kind: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    operation: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

fn latency() -> Histogram {
    // 5 ms … ~40 s
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

fn cycle_duration() -> Histogram {
    // 0.1 s … ~7 h
    Histogram::new(exponential_buckets(0.1, 2.0, 18))
}

/// The agent's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    cycles: Family<CycleLabels, Counter>,
    cycle_seconds: Family<KindLabels, Histogram, fn() -> Histogram>,
    objects: Family<OutcomeLabels, Counter>,
    failures: Family<CodeLabels, Counter>,
    last_success: Gauge<f64, AtomicU64>,
    watermark_lag: Gauge<f64, AtomicU64>,
    escrow: Gauge,
    quarantined: Gauge,
    paused: Gauge,
    held: Gauge,
    ldap_seconds: Family<RequestLabels, Histogram, fn() -> Histogram>,
    ldap_errors: Family<ErrorLabels, Counter>,
    exo_seconds: Family<RequestLabels, Histogram, fn() -> Histogram>,
    exo_errors: Family<ErrorLabels, Counter>,
    throttle_seconds: Counter<f64, AtomicU64>,
    refused: Family<ReasonLabels, Counter>,
    webhook_failures: Counter,
    /// Serializes scrapes (the gauges are set, then encoded).
    scrape: Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("exo_writeback");
        let m = Metrics {
            cycles: Family::default(),
            cycle_seconds: Family::new_with_constructor(cycle_duration),
            objects: Family::default(),
            failures: Family::default(),
            last_success: Gauge::default(),
            watermark_lag: Gauge::default(),
            escrow: Gauge::default(),
            quarantined: Gauge::default(),
            paused: Gauge::default(),
            held: Gauge::default(),
            ldap_seconds: Family::new_with_constructor(latency),
            ldap_errors: Family::default(),
            exo_seconds: Family::new_with_constructor(latency),
            exo_errors: Family::default(),
            throttle_seconds: Counter::default(),
            refused: Family::default(),
            webhook_failures: Counter::default(),
            scrape: Mutex::new(()),
            registry: Registry::default(),
        };
        registry.register(
            "build",
            "The running agent's version",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        registry.register(
            "cycles",
            "Cycles run, by kind and result (completed, held, quarantined, failed, stopped)",
            m.cycles.clone(),
        );
        registry.register(
            "cycle_duration_seconds",
            "How long cycles took, by kind",
            m.cycle_seconds.clone(),
        );
        registry.register(
            "objects",
            "Objects processed by cycles, by outcome (written, unchanged, skipped, failed)",
            m.objects.clone(),
        );
        registry.register(
            "object_failures",
            "Failed objects, by outcome code",
            m.failures.clone(),
        );
        registry.register(
            "last_successful_cycle_timestamp_seconds",
            "When the newest completed sync cycle ended (Unix time; 0: none yet)",
            m.last_success.clone(),
        );
        registry.register(
            "watermark_lag_seconds",
            "How far the watermark is behind now: Exchange Online changes after it are not yet read",
            m.watermark_lag.clone(),
        );
        registry.register(
            "escrow_objects",
            "Objects in escrow, waiting for a retry",
            m.escrow.clone(),
        );
        registry.register(
            "quarantined",
            "1 while the job is in quarantine",
            m.quarantined.clone(),
        );
        registry.register("paused", "1 while the job is paused", m.paused.clone());
        registry.register(
            "held_cycles",
            "Cycles held by the change threshold, waiting for approval",
            m.held.clone(),
        );
        registry.register(
            "ldap_request_duration_seconds",
            "LDAP operations against AD, by operation",
            m.ldap_seconds.clone(),
        );
        registry.register(
            "ldap_request_errors",
            "Failed LDAP operations, by operation and kind (unreachable, schema, refused)",
            m.ldap_errors.clone(),
        );
        registry.register(
            "exo_request_duration_seconds",
            "Exchange Online InvokeCommand attempts, by cmdlet",
            m.exo_seconds.clone(),
        );
        registry.register(
            "exo_request_errors",
            "Failed Exchange Online attempts, by cmdlet and kind (throttled, server_error, client_error, timeout, transport)",
            m.exo_errors.clone(),
        );
        registry.register(
            "exo_throttle_wait_seconds",
            "Time spent waiting because Exchange Online throttled the agent",
            m.throttle_seconds.clone(),
        );
        registry.register(
            "api_refused_requests",
            "API requests refused, by reason (missing, unknown, role)",
            m.refused.clone(),
        );
        registry.register(
            "webhook_failures",
            "Webhook notifications that could not be delivered after their retries",
            m.webhook_failures.clone(),
        );
        Metrics { registry, ..m }
    }

    /// A cycle's report (a turn of the loop, or an operation's cycle).
    pub fn cycle(&self, report: &CycleReport, took: Duration) {
        let result = match &report.status {
            CycleStatus::Completed => "completed",
            CycleStatus::ThresholdExceeded => "held",
            CycleStatus::Quarantined { .. } => "quarantined",
            CycleStatus::Failed { .. } => "failed",
            CycleStatus::Interrupted | CycleStatus::Running => "stopped",
            CycleStatus::NothingInScope { .. } => "nothing_in_scope",
        };
        self.cycle_result(report.kind.as_str(), result);
        self.cycle_seconds
            .get_or_create(&KindLabels {
                kind: report.kind.as_str().into(),
            })
            .observe(took.as_secs_f64());
        let c = &report.counts;
        for (outcome, n) in [
            ("written", c.written),
            ("unchanged", c.unchanged),
            ("skipped", c.skipped),
            ("failed", c.failed),
        ] {
            self.objects
                .get_or_create(&OutcomeLabels {
                    outcome: outcome.into(),
                })
                .inc_by(n);
        }
        for (code, n) in &report.failure_causes {
            self.failures
                .get_or_create(&CodeLabels {
                    code: code.to_string(),
                })
                .inc_by(*n);
        }
    }

    /// A cycle that produced no report (held before it ran, failed as a whole).
    pub fn cycle_result(&self, kind: &str, result: &str) {
        self.cycles
            .get_or_create(&CycleLabels {
                kind: kind.into(),
                result: result.into(),
            })
            .inc();
    }

    /// A refused API request.
    pub fn refused(&self, reason: &str) {
        self.refused
            .get_or_create(&ReasonLabels {
                reason: reason.into(),
            })
            .inc();
    }

    pub fn webhook_failed(&self) {
        self.webhook_failures.inc();
    }

    /// The text exposition of every metric, the state's gauges read from `store` first.
    pub fn encode<S: JobStore + CycleStore + EscrowStore + StagingStore + PauseStore + ?Sized>(
        &self,
        store: &S,
        now: Timestamp,
    ) -> Result<String, crate::error::ApiError> {
        let _one = self.scrape.lock().unwrap_or_else(|p| p.into_inner());
        let state = store.job_state()?;
        self.quarantined
            .set(i64::from(matches!(state, JobState::Quarantine { .. })));
        self.paused.set(i64::from(store.pause()?.is_some()));
        self.held.set(
            store
                .pending_staged_cycles()?
                .len()
                .try_into()
                .unwrap_or(i64::MAX),
        );
        self.escrow
            .set(store.escrow_count()?.try_into().unwrap_or(i64::MAX));
        let lag = store
            .watermark()?
            .map(|w| now.duration_since(w.changed_since).as_secs_f64())
            .unwrap_or(0.0);
        self.watermark_lag.set(lag);
        let last = store
            .recent_cycles(200)?
            .into_iter()
            .find(|c| c.kind.is_scheduled() && c.status == CycleStatus::Completed)
            .and_then(|c| c.finished_at)
            .map(|t| t.as_millisecond() as f64 / 1000.0);
        // Keep what an earlier scrape saw when the newest cycles hold no completed one.
        if let Some(t) = last {
            self.last_success.set(t);
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).map_err(|e| {
            crate::error::ApiError::internal(format!("cannot encode the metrics: {e}"))
        })?;
        Ok(out)
    }
}

impl Observer for Metrics {
    fn ldap(&self, operation: &'static str, elapsed: Duration, error: Option<&'static str>) {
        self.ldap_seconds
            .get_or_create(&RequestLabels {
                operation: operation.into(),
            })
            .observe(elapsed.as_secs_f64());
        if let Some(kind) = error {
            self.ldap_errors
                .get_or_create(&ErrorLabels {
                    operation: operation.into(),
                    kind: kind.into(),
                })
                .inc();
        }
    }

    fn exo(&self, event: &ExoEvent) {
        match event {
            ExoEvent::Request {
                cmdlet,
                elapsed,
                outcome,
            } => {
                self.exo_seconds
                    .get_or_create(&RequestLabels {
                        operation: cmdlet.clone(),
                    })
                    .observe(elapsed.as_secs_f64());
                if *outcome != "ok" {
                    self.exo_errors
                        .get_or_create(&ErrorLabels {
                            operation: cmdlet.clone(),
                            kind: (*outcome).into(),
                        })
                        .inc();
                }
            }
            ExoEvent::Throttled { wait } => {
                self.throttle_seconds.inc_by(wait.as_secs_f64());
            }
        }
    }
}
