//! How the CLI asks a running agent to write, so the agent stays the single writer of its
//! state.
//!
//! Finding it: a running agent describes its listener in `<state_dir>/api.json` (written when
//! it listens, removed when it stops; `crate::server`). The CLI reads the same configuration
//! file as the agent, so it knows the state directory; a file whose process is gone is stale
//! and ignored. Then the CLI needs an operator token: the file named by
//! `EXO_WRITEBACK_TOKEN_FILE`, else the first operator token of `[[api.tokens]]` it can read
//! (root, or the service's user). With an agent running and no token, a command that writes
//! is refused rather than written beside the agent. With no agent running, the CLI works on
//! the state directly, behind the state lock.
//!
//! The answers come back as the agent library's own types, so the CLI prints them as it
//! prints its own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use exo_writeback_agent::config::{Config, Role};
use exo_writeback_core::outcome::OutcomeCode;
use exo_writeback_core::provisioning::{
    Action, CycleId, CycleKind, CycleStatus, LogEntryId, LogStatus, ModifiedProperty, Pause,
    PinCount, ProvisioningLogEntry, Reason, SourceIdentity, Step, StepStatus, Steps,
    TargetIdentity, Watermark,
};
use exo_writeback_core::secret::Secret;
use exo_writeback_engine::{CycleReport, ProvisionReport, UnreadableAttribute};
use exo_writeback_store_sqlite::RestartReport;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ErrorBody;
use crate::model::cycle::CycleResult;
use crate::model::log::{LogEntry, Value};
use crate::model::ops::{
    PauseRequest, PauseResult, ProvisionRequest, ProvisionResult, RejectRequest, RestartRequest,
    RestartResult, RestartScopeName, ResumeResult, UndoRequest, UnpinRequest, UnpinResult,
};
use crate::model::status::PauseView;
use crate::server::{ENDPOINT_FILE, Endpoint};

/// The environment variable naming an operator token file for the CLI.
pub const TOKEN_FILE_ENV: &str = "EXO_WRITEBACK_TOKEN_FILE";

/// Why the CLI could not ask the agent.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "an agent is running on this state (pid {pid}, {url}) and stays its only writer: give an operator token with {TOKEN_FILE_ENV}=<file> (or run as a user who can read an operator token of [[api.tokens]]), or stop the agent first"
    )]
    NoToken { pid: u32, url: String },
    #[error("cannot reach the running agent at {url}: {problem}")]
    Unreachable { url: String, problem: String },
    #[error("the agent refused: {message} ({code})")]
    Api { code: String, message: String },
    #[error("the agent's answer cannot be read: {0}")]
    Answer(String),
    #[error("cannot use api.tls_cert_file {}: {problem}", path.display())]
    Certificate { path: PathBuf, problem: String },
}

/// A running agent the CLI can ask.
pub struct AgentClient {
    http: reqwest::Client,
    endpoint: Endpoint,
    token: Secret,
}

/// The agent running on `config`'s state, if any (see the module's rules).
pub fn find(config: &Config) -> Result<Option<AgentClient>, ClientError> {
    let Some(endpoint) = running(&config.sync.state_dir) else {
        return Ok(None);
    };
    let Some(token) = operator_token(config) else {
        return Err(ClientError::NoToken {
            pid: endpoint.pid,
            url: endpoint.url,
        });
    };
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none());
    if endpoint.tls {
        if let Some(cert) = &config.api.tls_cert_file {
            let pem = std::fs::read(cert).map_err(|e| ClientError::Certificate {
                path: cert.clone(),
                problem: e.to_string(),
            })?;
            for c in reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                ClientError::Certificate {
                    path: cert.clone(),
                    problem: e.to_string(),
                }
            })? {
                builder = builder.add_root_certificate(c);
            }
        }
        // The URL names the certificate's host; the connection goes to the agent's address.
        if let Some(host) = reqwest::Url::parse(&endpoint.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .filter(|h| h.parse::<std::net::IpAddr>().is_err())
        {
            builder = builder.resolve(&host, endpoint.address);
        }
    }
    let http = builder.build().map_err(|e| ClientError::Unreachable {
        url: endpoint.url.clone(),
        problem: e.to_string(),
    })?;
    Ok(Some(AgentClient {
        http,
        endpoint,
        token,
    }))
}

/// The endpoint of the agent running on this state directory: `api.json` names a live
/// process that holds the cycle runner's lock (a stale file is ignored).
pub fn running(state_dir: &Path) -> Option<Endpoint> {
    let text = std::fs::read_to_string(state_dir.join(ENDPOINT_FILE)).ok()?;
    let endpoint: Endpoint = serde_json::from_str(&text).ok()?;
    let runner = exo_writeback_agent::lock::cycle_runner(state_dir).ok()??;
    let same = runner.is_none_or(|r| r.pid == endpoint.pid);
    (same && alive(endpoint.pid)).then_some(endpoint)
}

#[cfg(unix)]
fn alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 checks that the process exists; nothing is sent.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(not(unix))]
fn alive(_pid: u32) -> bool {
    true
}

fn read_token(path: &Path) -> Option<Secret> {
    let text = std::fs::read_to_string(path).ok()?;
    let t = text.trim_end_matches(['\r', '\n']).to_string();
    (!t.is_empty()).then(|| Secret::new(t))
}

fn operator_token(config: &Config) -> Option<Secret> {
    if let Some(file) = std::env::var_os(TOKEN_FILE_ENV) {
        return read_token(Path::new(&file));
    }
    config
        .api
        .tokens
        .iter()
        .filter(|t| t.role == Role::Operator)
        .find_map(|t| read_token(&t.file))
}

impl AgentClient {
    pub fn url(&self) -> &str {
        &self.endpoint.url
    }

    pub fn pid(&self) -> u32 {
        self.endpoint.pid
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.endpoint.url);
        let response = self
            .http
            .post(&url)
            .bearer_auth(self.token.expose())
            .header(
                crate::auth::ON_BEHALF_HEADER,
                exo_writeback_agent::admin::operator(),
            )
            .json(body)
            .send()
            .await
            .map_err(|e| ClientError::Unreachable {
                url: self.endpoint.url.clone(),
                problem: e.without_url().to_string(),
            })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ClientError::Answer(e.without_url().to_string()))?;
        if !status.is_success() {
            return Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(b) => ClientError::Api {
                    code: b.error.code,
                    message: b.error.message,
                },
                Err(_) => ClientError::Answer(format!("HTTP {status}")),
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Answer(e.to_string()))
    }

    pub async fn approve(&self, cycle: i64) -> Result<CycleReport, ClientError> {
        let r: CycleResult = self
            .post(&format!("/api/v1/held/{cycle}/approve"), &())
            .await?;
        report_of(&r)
    }

    pub async fn undo(
        &self,
        cycle: Option<i64>,
        object: Option<String>,
    ) -> Result<CycleReport, ClientError> {
        let r: CycleResult = self
            .post("/api/v1/undo", &UndoRequest { cycle, object })
            .await?;
        report_of(&r)
    }

    pub async fn provision(
        &self,
        identity: &str,
        dry_run: bool,
    ) -> Result<ProvisionReport, ClientError> {
        let r: ProvisionResult = self
            .post(
                "/api/v1/provision",
                &ProvisionRequest {
                    identity: identity.to_string(),
                    dry_run,
                },
            )
            .await?;
        Ok(ProvisionReport {
            identity: r.identity,
            dry_run: r.dry_run,
            cycle: r.cycle.map(CycleId),
            entry: entry_of(&r.entry)?,
        })
    }

    pub async fn pause(&self, reason: Option<&str>) -> Result<(Pause, Option<Pause>), ClientError> {
        let r: PauseResult = self
            .post(
                "/api/v1/pause",
                &PauseRequest {
                    reason: reason.map(str::to_string),
                },
            )
            .await?;
        Ok((
            pause_of(&r.pause)?,
            r.replaced.as_ref().map(pause_of).transpose()?,
        ))
    }

    pub async fn resume(&self) -> Result<Option<Pause>, ClientError> {
        let r: ResumeResult = self.post("/api/v1/resume", &()).await?;
        r.lifted.as_ref().map(pause_of).transpose()
    }

    pub async fn reject(
        &self,
        cycle: i64,
        reason: Option<&str>,
    ) -> Result<CycleReport, ClientError> {
        let r: CycleResult = self
            .post(
                &format!("/api/v1/held/{cycle}/reject"),
                &RejectRequest {
                    reason: reason.map(str::to_string),
                },
            )
            .await?;
        report_of(&r)
    }

    pub async fn unpin(
        &self,
        object: Option<String>,
    ) -> Result<(PinCount, Option<uuid::Uuid>), ClientError> {
        let all = object.is_none();
        let r: UnpinResult = self
            .post("/api/v1/unpin", &UnpinRequest { object, all })
            .await?;
        let guid = match &r.object_guid {
            Some(g) => Some(uuid::Uuid::parse_str(g).map_err(|_| bad("objectGUID"))?),
            None => None,
        };
        Ok((
            PinCount {
                attributes: r.attributes,
                objects: r.objects,
            },
            guid,
        ))
    }

    pub async fn restart(&self, scope: RestartScopeName) -> Result<RestartReport, ClientError> {
        let r: RestartResult = self
            .post("/api/v1/restart", &RestartRequest { scope })
            .await?;
        Ok(RestartReport {
            watermark_cleared: r.watermark_cleared,
            joins_removed: r.joins_removed,
            escrow_removed: r.escrow_removed,
            staged_cycles_discarded: r.held_cycles_discarded,
            job_state: r.job.job_state().ok_or_else(|| bad("job state"))?,
        })
    }
}

fn bad(what: &str) -> ClientError {
    ClientError::Answer(format!("unexpected {what}"))
}

fn pause_of(p: &PauseView) -> Result<Pause, ClientError> {
    Ok(Pause {
        by: p.by.clone(),
        since: p.since.parse().map_err(|_| bad("time"))?,
        reason: p.reason.clone(),
    })
}

/// The agent library's report of a cycle from the API's answer.
pub fn report_of(r: &CycleResult) -> Result<CycleReport, ClientError> {
    let reason = r.reason.clone().unwrap_or_default();
    let status = match r.status.as_str() {
        "Running" => CycleStatus::Running,
        "Completed" => CycleStatus::Completed,
        "ThresholdExceeded" => CycleStatus::ThresholdExceeded,
        "Quarantined" => CycleStatus::Quarantined { reason },
        "Failed" => CycleStatus::Failed { reason },
        "Interrupted" => CycleStatus::Interrupted,
        "NothingInScope" => CycleStatus::NothingInScope { reason },
        _ => return Err(bad("cycle status")),
    };
    let codes = |m: &BTreeMap<String, u64>| -> Result<BTreeMap<OutcomeCode, u64>, ClientError> {
        m.iter()
            .map(|(code, n)| Ok((OutcomeCode::parse(code).ok_or_else(|| bad("code"))?, *n)))
            .collect()
    };
    Ok(CycleReport {
        cycle: CycleId(r.cycle),
        kind: CycleKind::from_name(&r.kind).ok_or_else(|| bad("cycle kind"))?,
        counts: (&r.counts).into(),
        status,
        watermark: match &r.watermark {
            Some(w) => Some(Watermark {
                changed_since: w.parse().map_err(|_| bad("watermark"))?,
                overlap: jiff::SignedDuration::from_secs(r.watermark_overlap_seconds.unwrap_or(0)),
                cycle: CycleId(r.cycle),
                edge: Vec::new(),
            }),
            None => None,
        },
        removing: r.removing,
        failure_causes: codes(&r.failure_causes)?,
        skipped_causes: codes(&r.skipped_causes)?,
        pins_set: PinCount {
            attributes: r.pins_set.attributes,
            objects: r.pins_set.objects,
        },
        pins_released: r.pins_released,
        unreadable_attributes: r
            .unreadable_attributes
            .iter()
            .map(|u| UnreadableAttribute {
                attribute: u.attribute.clone(),
                message: u.message.clone(),
            })
            .collect(),
    })
}

fn values_of(
    values: &[Value],
) -> Result<Vec<exo_writeback_core::directory::AttrValue>, ClientError> {
    use base64::Engine as _;
    use exo_writeback_core::directory::AttrValue;
    values
        .iter()
        .map(|v| match v {
            Value::Text(t) => Ok(AttrValue::Text(t.clone())),
            Value::Bytes { base64 } => base64::engine::general_purpose::STANDARD
                .decode(base64)
                .map(AttrValue::Bytes)
                .map_err(|_| bad("value")),
        })
        .collect()
}

fn step_of(s: &crate::model::log::ProvisioningStep) -> Result<Step, ClientError> {
    Ok(Step {
        status: match s.status.as_str() {
            "success" => StepStatus::Success,
            "failure" => StepStatus::Failure,
            "skipped" => StepStatus::Skipped,
            _ => return Err(bad("step status")),
        },
        details: s.description.clone(),
    })
}

/// The agent library's log entry from the API's.
pub fn entry_of(e: &LogEntry) -> Result<ProvisioningLogEntry, ClientError> {
    let steps: Vec<Step> = e
        .provisioning_steps
        .iter()
        .map(step_of)
        .collect::<Result<_, _>>()?;
    let [import, scoping, matching, export]: [Step; 4] =
        steps.try_into().map_err(|_| bad("number of steps"))?;
    Ok(ProvisioningLogEntry {
        id: LogEntryId(uuid::Uuid::parse_str(&e.id).map_err(|_| bad("entry id"))?),
        cycle: CycleId(e.cycle_id),
        time: e.activity_date_time.parse().map_err(|_| bad("time"))?,
        duration: jiff::SignedDuration::from_millis(e.duration_in_milliseconds),
        source: SourceIdentity {
            kind: Default::default(),
            external_directory_object_id: e.source_identity.id.clone(),
            primary_smtp_address: e.source_identity.display_name.clone(),
            user_principal_name: e.source_identity.user_principal_name.clone(),
        },
        target: TargetIdentity {
            dn: e.target_identity.display_name.clone(),
            object_guid: match &e.target_identity.id {
                Some(g) => Some(uuid::Uuid::parse_str(g).map_err(|_| bad("objectGUID"))?),
                None => None,
            },
        },
        action: match e.action.as_str() {
            "Update" => Action::Update,
            "Other" => Action::Other,
            "Skip" => Action::Skip,
            _ => return Err(bad("action")),
        },
        status: LogStatus::from_name(&e.provisioning_status_info.status)
            .ok_or_else(|| bad("status"))?,
        reason: match &e.provisioning_status_info.error_information {
            Some(i) => Some(Reason {
                code: OutcomeCode::parse(&i.error_code).ok_or_else(|| bad("code"))?,
                message: i.reason.clone(),
                recommended_action: i.recommended_resolution.clone(),
            }),
            None => None,
        },
        steps: Steps {
            import,
            scoping,
            matching,
            export,
        },
        modified: e
            .modified_properties
            .iter()
            .map(|m| {
                Ok(ModifiedProperty {
                    attribute: m.display_name.clone(),
                    old: values_of(&m.old_values)?,
                    new: values_of(&m.new_values)?,
                })
            })
            .collect::<Result<_, ClientError>>()?,
    })
}
