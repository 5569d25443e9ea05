//! The engine: one object (import → scope → match → plan → guard), one cycle, and the
//! operations built on them (preview, approve, provision on demand, undo).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use exo_writeback_core::directory::{AttrChange, AttrValue, DirectoryObject, ModOp, ObjectModify};
use exo_writeback_core::mailbox::Mailbox;
use exo_writeback_core::matching::{MatchDecision, RuleResult, decide_match, match_lookups};
use exo_writeback_core::outcome::{OutcomeCode, OutcomeDetail};
use exo_writeback_core::plan::{ObjectPlan, PlanInput, check_address_conflicts, plan_object};
use exo_writeback_core::provisioning::{
    Action, CycleCounts, CycleId, CycleKind, CycleStatus, EscrowFailure, EscrowUpdate, JobState,
    Join, JoinUpdate, JournalRecord, LogEntryId, LogStatus, ModifiedProperty, ObjectOutcome,
    ObjectRef, ProvisioningLogEntry, Reason, SourceIdentity, Step, StepStatus, Steps,
    TargetIdentity, Watermark, WatermarkTracker,
};
use exo_writeback_core::schema::Schema;
use exo_writeback_core::scope::{check_container_scope, evaluate_scope};
use exo_writeback_core::settings::WritebackPlanSettings;
use exo_writeback_expr::EvalContext;
use exo_writeback_store::{Store, StoreError, WriteIntent};
use futures::StreamExt;
use jiff::{SignedDuration, Timestamp};
use uuid::Uuid;

use crate::match_index::{Candidates, MatchIndex};
use crate::ports::{Directory, DirectoryError, MailboxSource, SourceError};
use crate::spill::Spill;
use crate::staged::StagedObject;

/// Why an engine operation could not run (per-object problems are outcomes, not errors).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("reading Exchange Online failed: {0}")]
    Source(SourceError),
    #[error("Active Directory: {0}")]
    Directory(DirectoryError),
    #[error(
        "cycle {cycle} is held by the change threshold: review it with `exo-writeback preview`, then run `exo-writeback approve {cycle}` (or `exo-writeback restart --scope full` to drop it)"
    )]
    Held { cycle: CycleId },
    #[error("the job is paused; nothing was done")]
    Paused,
    #[error("cycle {cycle} has no changes waiting for approval{why}")]
    NotHeld { cycle: CycleId, why: String },
    #[error("a staged plan of cycle {cycle} cannot be read: {problem}")]
    StagedPlan { cycle: CycleId, problem: String },
    #[error("nothing to undo: {0}")]
    NothingToUndo(String),
    /// The temporary file for plans beyond `max_plans_in_memory` failed (nothing was written
    /// when it fails before the threshold decision).
    #[error("{0}")]
    Spill(String),
    #[error(
        "the job is in quarantine ({reason}); the next retry is due at {next_retry}. Fix the cause, then wait or run `exo-writeback restart --scope quarantine` to retry now"
    )]
    Quarantined {
        reason: String,
        next_retry: Timestamp,
    },
}

/// How often outcomes are committed together (one transaction per batch), and how many
/// modifies one transaction of write-ahead intents covers.
const DEFAULT_BATCH: usize = 200;

/// Tunables of the engine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Re-read by each delta cycle before the watermark.
    pub overlap: SignedDuration,
    /// Outcomes per store transaction, and objects per chunk of the write phase (intents
    /// committed → modifies → outcomes committed).
    pub batch: usize,
    /// Escrow entries retried per cycle at most.
    pub escrow_per_cycle: usize,
    /// Plans held in memory until the threshold decision; beyond it plans wait in an
    /// anonymous temporary file (in `spill_dir`, about 2.4 KB per object) so memory stays
    /// bounded on huge cycles.
    pub max_plans_in_memory: usize,
    /// Where that file is created: the agent's state directory (sized for the state), or
    /// `TMPDIR` when `None`.
    pub spill_dir: Option<std::path::PathBuf>,
    /// When a modify fails because AD cannot be reached (connection refused or broken), it is
    /// sent again after each of these waits (a DC restarting comes back within seconds). If AD
    /// is still unreachable, the write phase stops: the objects not yet written stay pending
    /// for the next cycle (no failure entry, no escrow; the watermark stays before them) and
    /// the cycle is quarantined with the error.
    pub reconnect_waits: Vec<std::time::Duration>,
    /// Mailboxes evaluated (matched, planned, guarded: AD reads only) at the same time in
    /// the read phase of a cycle; 1 = one after the other. Writes stay one at a time, in
    /// order.
    pub evaluate_concurrency: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            overlap: SignedDuration::from_mins(5),
            batch: DEFAULT_BATCH,
            escrow_per_cycle: 10_000,
            max_plans_in_memory: 20_000,
            spill_dir: None,
            reconnect_waits: [1, 2, 4, 8].map(std::time::Duration::from_secs).to_vec(),
            evaluate_concurrency: 8,
        }
    }
}

/// Which cycle to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CycleMode {
    /// Initial when there is no watermark, else delta.
    Auto,
    /// A full reconcile (initial when there is no watermark).
    Full,
}

/// Progress of a running cycle, for a progress bar or logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Mailboxes read so far.
    Imported(u64),
    /// Objects written so far, of a total.
    Writing { done: u64, total: u64 },
}

/// What a cycle did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CycleReport {
    pub cycle: CycleId,
    pub kind: CycleKind,
    pub counts: CycleCounts,
    pub status: CycleStatus,
    /// The watermark stored at the end (`None`: not advanced).
    pub watermark: Option<Watermark>,
    /// Objects whose plans remove values (the threshold's count).
    pub removing: u64,
    /// Failed objects by outcome code (`LdapError`, `SchemaConstraint` …).
    pub failure_causes: BTreeMap<String, u64>,
}

/// What became of one object before writing.
#[derive(Debug, Clone)]
pub enum Disposition {
    Skipped(OutcomeDetail),
    Failed(OutcomeDetail),
    InSync,
    Write { plan: ObjectPlan, object_guid: Uuid },
}

/// One object after import, scope, match, plan and the address guard.
#[derive(Debug, Clone)]
pub struct Processed {
    pub cloud_id: String,
    pub when_changed: Option<Timestamp>,
    pub started: Timestamp,
    pub source: SourceIdentity,
    pub target: TargetIdentity,
    pub steps: Steps,
    pub join: JoinUpdate,
    pub disposition: Disposition,
}

/// How the write of one object went.
#[derive(Debug, Clone)]
pub enum WriteResult {
    /// Nothing to write (skip, failure before writing, in sync).
    NotNeeded,
    Written,
    Failed(DirectoryError),
    /// Dry run: would have been written.
    DryRun,
}

/// One object of a preview.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PreviewItem {
    pub cloud_id: String,
    pub primary_smtp_address: Option<String>,
    pub dn: Option<String>,
    /// `Updated` (would be written), or the skip/failure code.
    pub code: String,
    pub reason: Option<String>,
    pub removes_values: bool,
    pub changes: Vec<ModifiedProperty>,
}

/// What the next cycle would do, and the changes a held cycle waits to apply.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Preview {
    pub kind: String,
    pub items: Vec<PreviewItem>,
    /// Objects the next cycle would write.
    pub would_write: u64,
    /// Of those, how many remove values (threshold count).
    pub removing: u64,
    pub threshold: u32,
    pub would_be_held: bool,
    /// A held cycle and its staged changes.
    pub held: Option<HeldChanges>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HeldChanges {
    pub cycle: CycleId,
    pub items: Vec<PreviewItem>,
}

/// The result of provision on demand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionReport {
    pub identity: String,
    pub dry_run: bool,
    /// The on-demand cycle it was logged in (none for a dry run).
    pub cycle: Option<CycleId>,
    pub entry: ProvisioningLogEntry,
}

/// What `undo` restores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UndoTarget {
    Cycle(CycleId),
    Object(ObjectRef),
}

/// The identity of a mailbox: its ExternalDirectoryObjectId, else its primary address.
pub fn cloud_id(mailbox: &Mailbox) -> String {
    if let Some(id) = mailbox
        .external_directory_object_id
        .as_deref()
        .filter(|s| !s.trim().is_empty())
    {
        return id.trim().to_string();
    }
    match (&mailbox.primary_smtp_address, &mailbox.alias) {
        (Some(p), _) => format!("smtp:{}", p.to_lowercase()),
        (None, Some(a)) => format!("alias:{a}"),
        (None, None) => "unknown".into(),
    }
}

fn source_identity(mailbox: &Mailbox) -> SourceIdentity {
    SourceIdentity {
        external_directory_object_id: mailbox.external_directory_object_id.clone(),
        primary_smtp_address: mailbox.primary_smtp_address.clone(),
    }
}

fn step(status: StepStatus, details: impl Into<String>) -> Step {
    Step {
        status,
        details: details.into(),
    }
}

fn describe_values(values: &[AttrValue]) -> String {
    if values.is_empty() {
        return "(none)".into();
    }
    values
        .iter()
        .map(|v| match v {
            AttrValue::Text(t) => t.clone(),
            AttrValue::Bytes(b) => format!(
                "0x{}",
                b.iter().map(|x| format!("{x:02x}")).collect::<String>()
            ),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The text of a modified property, `old → new`, for tables.
pub fn describe_change(p: &ModifiedProperty) -> String {
    format!("{} → {}", describe_values(&p.old), describe_values(&p.new))
}

fn ldap_failure(e: &DirectoryError) -> OutcomeDetail {
    let reason = match e.ldap_code {
        Some(c) if !e.message.contains(&format!("result {c}")) => {
            format!("LDAP result {c}: {}", e.message)
        }
        _ => e.message.clone(),
    };
    OutcomeDetail::new(OutcomeCode::LdapError, reason)
}

/// The outcome of a mailbox record the source could not read (a property of the wrong JSON
/// type, bytes that are not UTF-8): a Failure entry in the provisioning log, and escrow —
/// retried by its ExternalDirectoryObjectId — when that id was readable. The record is not
/// tracked for the watermark (its WhenChangedUTC is unknown): the watermark may pass it, and
/// escrow or its next change brings it back. Returns the id for the batch and the outcome.
fn unreadable_outcome(e: &SourceError, cycle: CycleId) -> (String, ObjectOutcome) {
    let source = e.record.clone().unwrap_or_default();
    let cloud_id = source
        .external_directory_object_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let detail = OutcomeDetail::new(OutcomeCode::MalformedMailboxRecord, e.message.clone());
    let now = Timestamp::now();
    let escrow = match &cloud_id {
        Some(id) => EscrowUpdate::Failed {
            failure: EscrowFailure {
                cloud_id: id.clone(),
                source: source.clone(),
                target: TargetIdentity::default(),
                error: Reason::from(detail.clone()),
            },
            failed_at: now,
        },
        None => EscrowUpdate::Keep,
    };
    let log = ProvisioningLogEntry {
        id: LogEntryId(Uuid::new_v4()),
        cycle,
        time: now,
        duration: SignedDuration::ZERO,
        source,
        target: TargetIdentity::default(),
        action: Action::Skip,
        status: LogStatus::Failure,
        reason: Some(Reason::from(detail)),
        steps: Steps {
            import: step(StepStatus::Failure, e.message.clone()),
            scoping: Step::not_reached(),
            matching: Step::not_reached(),
            export: Step::not_reached(),
        },
        modified: Vec::new(),
    };
    let id = cloud_id.unwrap_or_else(|| format!("unreadable:{}", log.id));
    (
        id,
        ObjectOutcome {
            log,
            journal: Vec::new(),
            join: JoinUpdate::Keep,
            escrow,
        },
    )
}

fn modified_of(plan: &ObjectPlan) -> Vec<ModifiedProperty> {
    plan.changes
        .iter()
        .map(|c| ModifiedProperty {
            attribute: c.attribute.clone(),
            old: c.old.clone(),
            new: c.new.clone(),
        })
        .collect()
}

/// Resolves once `flag` is set (polled; cancellation is rare and coarse).
async fn wait_for(flag: Arc<AtomicBool>) {
    while !flag.load(Ordering::SeqCst) {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The state of a running cycle.
struct Work {
    seen: HashSet<String>,
    tracker: WatermarkTracker,
    counts: CycleCounts,
    batch: Vec<(String, ObjectOutcome)>,
    /// Planned objects waiting for the threshold decision.
    to_write: Vec<Processed>,
    /// Plans beyond `max_plans_in_memory`, in a temporary file until the threshold decision
    /// (memory stays bounded; nothing is read or planned twice).
    spill: Option<Spill>,
    /// Objects whose plans remove values (the threshold's count).
    removing: u64,
}

/// Where a held (staged) object stands when its change is approved.
enum HeldState {
    /// It holds the values the change was planned from: write it.
    Unchanged,
    /// It already holds the approved values: nothing to write.
    AlreadyApplied,
    /// Changed since, gone, or unreadable: not written.
    Refused(OutcomeDetail),
}

/// Attribute → values to put back, for one object.
type Restore = Vec<(String, Vec<AttrValue>)>;

/// The engine over its ports and store.
pub struct Engine<S, D, St> {
    pub source: S,
    pub directory: D,
    pub store: St,
    pub settings: WritebackPlanSettings,
    pub options: EngineOptions,
    cancel: Arc<AtomicBool>,
    progress: Box<dyn Fn(Progress) + Send + Sync>,
    /// Failures of the running cycle by outcome code (input of the quarantine decision).
    failure_causes: BTreeMap<String, u64>,
    /// One failure reason per outcome code of the running cycle (for the quarantine reason).
    failure_examples: BTreeMap<String, String>,
    /// Mailboxes the running cycle has read (a failure before any is a quarantine cause).
    cycle_imported: u64,
    /// Objects waiting to be written as the next chunk (intents → modifies → outcomes).
    write_queue: Vec<Processed>,
    /// Set when AD stayed unreachable through a modify's retries: the running cycle writes
    /// nothing more (see `EngineOptions::reconnect_waits`).
    ad_unreachable: Option<DirectoryError>,
    /// Intents of the chunk being written, deleted by the next [`Engine::flush`] together with
    /// the chunk's outcomes.
    intents_to_clear: Vec<Uuid>,
    /// The match keys of the directory, read at the start of an initial or full cycle (or
    /// preview); `None` in deltas and when the directory cannot list them.
    pub(crate) match_index: Option<MatchIndex>,
}

impl<S: MailboxSource, D: Directory, St: Store> Engine<S, D, St> {
    pub fn new(
        source: S,
        directory: D,
        store: St,
        settings: WritebackPlanSettings,
        options: EngineOptions,
    ) -> Self {
        Engine {
            source,
            directory,
            store,
            settings,
            options,
            cancel: Arc::new(AtomicBool::new(false)),
            progress: Box::new(|_| {}),
            failure_causes: BTreeMap::new(),
            failure_examples: BTreeMap::new(),
            cycle_imported: 0,
            write_queue: Vec::new(),
            ad_unreachable: None,
            intents_to_clear: Vec::new(),
            match_index: None,
        }
    }

    /// Set to true (e.g. on SIGTERM) to stop after the current object. The watermark never
    /// passes unfinished work.
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        self.cancel.clone()
    }

    pub fn on_progress(&mut self, f: impl Fn(Progress) + Send + Sync + 'static) {
        self.progress = Box::new(f);
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    fn ctx(&self) -> EvalContext {
        EvalContext {
            now: Timestamp::now(),
            seed: 0,
        }
    }

    // ---------------------------------------------------------------------------------------
    // One object
    // ---------------------------------------------------------------------------------------

    /// Match by the stored join (re-validated by reading the object by GUID), else by the
    /// ordered rules.
    async fn find_target(
        &self,
        mailbox: &Mailbox,
        cloud_id: &str,
        attrs: &[String],
    ) -> Result<(Result<(DirectoryObject, String), OutcomeDetail>, JoinUpdate), DirectoryError>
    {
        let mut join_update = JoinUpdate::Keep;
        if let Ok(Some(join)) = self.store.join(cloud_id) {
            match self
                .directory
                .read_by_guid(&join.object_guid, attrs)
                .await?
            {
                Some(obj) => {
                    let how = format!("by the stored join (objectGUID {})", join.object_guid);
                    if !obj.dn.eq_ignore_ascii_case(&join.dn) {
                        join_update = JoinUpdate::Set(Join {
                            cloud_id: cloud_id.to_string(),
                            object_guid: obj.object_guid,
                            dn: obj.dn.clone(),
                            updated_at: Timestamp::now(),
                        });
                    }
                    return Ok((Ok((obj, how)), join_update));
                }
                None => {
                    join_update = JoinUpdate::Remove {
                        cloud_id: cloud_id.to_string(),
                    };
                }
            }
        }
        let lookups = match_lookups(&self.settings.match_rules, mailbox);
        if let Some(index) = &self.match_index
            && let Some(decided) = self
                .match_by_index(index, &lookups, cloud_id, attrs, &join_update)
                .await?
        {
            return Ok(decided);
        }
        let mut results = Vec::new();
        let mut found: Vec<DirectoryObject> = Vec::new();
        for lookup in &lookups.lookups {
            let objects = self
                .directory
                .find_by_attribute(lookup.attribute, &lookup.value, attrs)
                .await?;
            results.push(RuleResult {
                rule: lookup.rule,
                dns: objects.iter().map(|o| o.dn.clone()).collect(),
            });
            found.extend(objects);
            if let Some(decision) = decide_match(&lookups, &results, false) {
                return Ok(match decision {
                    MatchDecision::Matched { rule, dn } => {
                        let Some(obj) = found.into_iter().find(|o| o.dn.eq_ignore_ascii_case(&dn))
                        else {
                            return Err(DirectoryError::new(format!(
                                "matched {dn} but could not read it"
                            )));
                        };
                        let join = JoinUpdate::Set(Join {
                            cloud_id: cloud_id.to_string(),
                            object_guid: obj.object_guid,
                            dn: obj.dn.clone(),
                            updated_at: Timestamp::now(),
                        });
                        (Ok((obj, format!("by {rule}"))), join)
                    }
                    other => (
                        Err(other.outcome().unwrap_or_else(|| {
                            OutcomeDetail::new(OutcomeCode::TargetNotFound, "no AD object matched")
                        })),
                        join_update,
                    ),
                });
            }
        }
        let decision = decide_match(&lookups, &results, true);
        let detail = decision.and_then(|d| d.outcome()).unwrap_or_else(|| {
            OutcomeDetail::new(OutcomeCode::TargetNotFound, "no AD object matched")
        });
        Ok((Err(detail), join_update))
    }

    /// The ordered rules answered from the cycle's match index: the same decisions as the
    /// per-mailbox searches ([`decide_match`] over the rules in order), each candidate read
    /// again by objectGUID. `None` (search per mailbox instead) when a rule has several
    /// candidates (the searches name their DNs), a candidate no longer holds the key, or
    /// the index cannot answer a rule.
    async fn match_by_index(
        &self,
        index: &MatchIndex,
        lookups: &exo_writeback_core::matching::MatchLookups,
        cloud_id: &str,
        attrs: &[String],
        join_update: &JoinUpdate,
    ) -> Result<
        Option<(Result<(DirectoryObject, String), OutcomeDetail>, JoinUpdate)>,
        DirectoryError,
    > {
        let mut results = Vec::new();
        for lookup in &lookups.lookups {
            let dns = match index.candidates(lookup.rule, &lookup.value) {
                None | Some(Candidates::Several) => return Ok(None),
                Some(Candidates::None) => Vec::new(),
                Some(Candidates::One(guid)) => {
                    let mut read_attrs = attrs.to_vec();
                    if !read_attrs
                        .iter()
                        .any(|a| a.eq_ignore_ascii_case(lookup.attribute))
                    {
                        read_attrs.push(lookup.attribute.to_string());
                    }
                    match self.directory.read_by_guid(&guid, &read_attrs).await? {
                        Some(obj) if MatchIndex::still_holds(lookup.rule, &lookup.value, &obj) => {
                            results.push(RuleResult {
                                rule: lookup.rule,
                                dns: vec![obj.dn.clone()],
                            });
                            return Ok(match decide_match(lookups, &results, false) {
                                Some(MatchDecision::Matched { rule, .. }) => {
                                    let join = JoinUpdate::Set(Join {
                                        cloud_id: cloud_id.to_string(),
                                        object_guid: obj.object_guid,
                                        dn: obj.dn.clone(),
                                        updated_at: Timestamp::now(),
                                    });
                                    Some((Ok((obj, format!("by {rule}"))), join))
                                }
                                _ => None,
                            });
                        }
                        // Gone or changed since the index was read: search.
                        _ => return Ok(None),
                    }
                }
            };
            results.push(RuleResult {
                rule: lookup.rule,
                dns,
            });
        }
        let detail = decide_match(lookups, &results, true)
            .and_then(|d| d.outcome())
            .unwrap_or_else(|| {
                OutcomeDetail::new(OutcomeCode::TargetNotFound, "no AD object matched")
            });
        Ok(Some((Err(detail), join_update.clone())))
    }

    /// Read the match keys of every object in the search scope into the match index (initial
    /// and full cycles, preview of them). A directory that cannot list them leaves the index
    /// off: matching then searches per mailbox.
    pub(crate) async fn load_match_index(&mut self) {
        self.match_index = None;
        let rules = self.settings.match_rules.clone();
        if rules.is_empty() {
            return;
        }
        let started = std::time::Instant::now();
        let mut index = MatchIndex::new(&rules);
        let attributes = MatchIndex::attributes(&rules);
        match self
            .directory
            .scan_match_keys(&attributes, &mut |o| index.add(&o))
            .await
        {
            Ok(()) => {
                tracing::info!(
                    objects = index.len(),
                    secs = started.elapsed().as_secs_f64(),
                    "read the match keys of the search scope"
                );
                self.match_index = Some(index);
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the match keys at once; matching searches per mailbox");
            }
        }
    }

    /// Import, scope, match, plan and guard one mailbox. Writes nothing.
    pub async fn evaluate(&self, mailbox: &Mailbox, schema: &Schema) -> Processed {
        let started = Timestamp::now();
        let cloud_id = cloud_id(mailbox);
        let mut p = Processed {
            cloud_id: cloud_id.clone(),
            when_changed: mailbox.when_changed_utc,
            started,
            source: source_identity(mailbox),
            target: TargetIdentity::default(),
            steps: Steps {
                import: step(
                    StepStatus::Success,
                    format!(
                        "read {} (ExternalDirectoryObjectId {}, {}, WhenChangedUTC {})",
                        mailbox
                            .primary_smtp_address
                            .as_deref()
                            .unwrap_or("(no address)"),
                        mailbox
                            .external_directory_object_id
                            .as_deref()
                            .unwrap_or("(none)"),
                        mailbox.recipient_type_details,
                        mailbox
                            .when_changed_utc
                            .map(|t| t.to_string())
                            .unwrap_or_else(|| "(none)".into())
                    ),
                ),
                scoping: Step::not_reached(),
                matching: Step::not_reached(),
                export: Step::not_reached(),
            },
            join: JoinUpdate::Keep,
            disposition: Disposition::InSync,
        };
        let in_scope = match evaluate_scope(&self.settings, mailbox) {
            Ok(s) => s,
            Err(skip) => {
                p.steps.scoping = step(StepStatus::Skipped, skip.to_string());
                p.disposition = Disposition::Skipped(skip.outcome());
                return p;
            }
        };
        p.steps.scoping = step(
            StepStatus::Success,
            format!(
                "in scope of {}",
                in_scope
                    .profiles()
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        let attrs = self.settings.required_ad_attributes();
        let (matched, join) = match self.find_target(mailbox, &cloud_id, &attrs).await {
            Ok(r) => r,
            Err(e) => {
                let d = ldap_failure(&e);
                p.steps.matching = step(StepStatus::Failure, d.to_string());
                p.disposition = Disposition::Failed(d);
                return p;
            }
        };
        p.join = join;
        let (current, how) = match matched {
            Ok(m) => m,
            Err(detail) => {
                let status = if detail.status() == LogStatus::Skipped {
                    StepStatus::Skipped
                } else {
                    StepStatus::Failure
                };
                p.steps.matching = step(status, detail.to_string());
                p.disposition = if status == StepStatus::Skipped {
                    Disposition::Skipped(detail)
                } else {
                    Disposition::Failed(detail)
                };
                return p;
            }
        };
        p.target = TargetIdentity {
            dn: Some(current.dn.clone()),
            object_guid: Some(current.object_guid),
        };
        if let Err(skip) = check_container_scope(&self.settings, &current.dn) {
            p.steps.matching = step(StepStatus::Skipped, skip.to_string());
            p.disposition = Disposition::Skipped(skip.outcome());
            return p;
        }
        p.steps.matching = step(StepStatus::Success, format!("matched {} {how}", current.dn));
        let ctx = self.ctx();
        let plan = match plan_object(&PlanInput {
            settings: &self.settings,
            scope: &in_scope,
            mailbox,
            current: &current,
            schema,
            ctx: &ctx,
        }) {
            Ok(plan) => plan,
            Err(f) => {
                let d = f.outcome();
                p.steps.export = step(StepStatus::Failure, d.to_string());
                p.disposition = Disposition::Failed(d);
                return p;
            }
        };
        if plan.is_in_sync() {
            p.steps.export = step(StepStatus::Success, "already in sync: nothing to write");
            p.disposition = Disposition::InSync;
            return p;
        }
        // The duplicate-address guard.
        let mut holders = Vec::new();
        if !plan.added_smtp_addresses.is_empty() {
            match self
                .directory
                .address_holders(&plan.added_smtp_addresses)
                .await
            {
                Ok(h) => holders = h,
                Err(e) => {
                    let d = ldap_failure(&e);
                    p.steps.export = step(StepStatus::Failure, d.to_string());
                    p.disposition = Disposition::Failed(d);
                    return p;
                }
            }
        }
        if let Err(f) = check_address_conflicts(&plan, &holders, &current.dn) {
            let d = f.outcome();
            p.steps.export = step(StepStatus::Failure, d.to_string());
            p.disposition = Disposition::Failed(d);
            return p;
        }
        p.disposition = Disposition::Write {
            object_guid: current.object_guid,
            plan,
        };
        p
    }

    /// Write one processed object (if it has a plan). On a schema-like or connection error
    /// the cached schema is refreshed for the next object.
    async fn write(&self, p: &Processed) -> WriteResult {
        let Disposition::Write { plan, .. } = &p.disposition else {
            return WriteResult::NotNeeded;
        };
        let Some(modify) = &plan.modify else {
            return WriteResult::NotNeeded;
        };
        match self.directory.modify(modify).await {
            Ok(()) => WriteResult::Written,
            Err(e) => {
                if (e.suggests_schema_change() || e.connection)
                    && let Err(re) = self.directory.refresh_schema().await
                {
                    tracing::warn!(error = %re, "re-reading the AD schema failed");
                }
                WriteResult::Failed(e)
            }
        }
    }

    /// The durable outcome of one object.
    fn outcome(
        &self,
        mut p: Processed,
        cycle: CycleId,
        result: WriteResult,
        drift_before: Option<Timestamp>,
    ) -> ObjectOutcome {
        let now = Timestamp::now();
        let mut journal = Vec::new();
        let mut modified = Vec::new();
        let (action, detail): (Action, Option<OutcomeDetail>) = match (&p.disposition, &result) {
            (Disposition::Skipped(d), _) => (Action::Skip, Some(d.clone())),
            (Disposition::Failed(d), _) => (Action::Skip, Some(d.clone())),
            (Disposition::InSync, _) => (Action::Other, None),
            (Disposition::Write { plan, object_guid }, WriteResult::Written) => {
                modified = modified_of(plan);
                for c in &plan.changes {
                    journal.push(JournalRecord {
                        cycle,
                        time: now,
                        object_guid: *object_guid,
                        dn: plan.dn.clone(),
                        attribute: c.attribute.clone(),
                        previous: c.old.clone(),
                        new: c.new.clone(),
                    });
                }
                let drift = drift_before.is_some()
                    && self.is_drift(*object_guid, p.when_changed, drift_before);
                let names = plan
                    .changes
                    .iter()
                    .map(|c| c.attribute.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                if drift {
                    p.steps.export = step(
                        StepStatus::Success,
                        format!("DriftCorrected: restored the cloud values of {names}"),
                    );
                    (
                        Action::Update,
                        Some(OutcomeDetail::new(
                            OutcomeCode::DriftCorrected,
                            format!(
                                "on-premises values of {names} differed from Exchange Online and were restored"
                            ),
                        )),
                    )
                } else {
                    p.steps.export = step(StepStatus::Success, format!("updated {names}"));
                    (Action::Update, None)
                }
            }
            (Disposition::Write { plan, .. }, WriteResult::DryRun) => {
                modified = modified_of(plan);
                p.steps.export = step(
                    StepStatus::Success,
                    format!("dry run: would update {} attribute(s)", plan.changes.len()),
                );
                (Action::Update, None)
            }
            (Disposition::Write { plan, .. }, WriteResult::Failed(e)) => {
                modified = modified_of(plan);
                let d = ldap_failure(e);
                p.steps.export = step(StepStatus::Failure, d.to_string());
                (Action::Update, Some(d))
            }
            (Disposition::Write { .. }, WriteResult::NotNeeded) => (Action::Other, None),
        };
        let status = detail.as_ref().map_or(LogStatus::Success, |d| d.status());
        let escrow = if status == LogStatus::Failure {
            EscrowUpdate::Failed {
                failure: EscrowFailure {
                    cloud_id: p.cloud_id.clone(),
                    source: p.source.clone(),
                    target: p.target.clone(),
                    error: detail.clone().map(Reason::from).unwrap_or(Reason {
                        code: "Unknown".into(),
                        message: String::new(),
                        recommended_action: String::new(),
                    }),
                },
                failed_at: now,
            }
        } else {
            EscrowUpdate::Clear {
                cloud_id: p.cloud_id.clone(),
            }
        };
        let duration = now.duration_since(p.started);
        ObjectOutcome {
            log: ProvisioningLogEntry {
                id: LogEntryId(Uuid::new_v4()),
                cycle,
                time: p.started,
                duration,
                source: p.source,
                target: p.target,
                action,
                status,
                reason: detail.map(Reason::from),
                steps: p.steps,
                modified,
            },
            journal,
            join: p.join,
            escrow,
        }
    }

    /// Whether a full reconcile's write corrects on-premises drift: the mailbox has not
    /// changed in Exchange Online since the agent last wrote the object (journal), or —
    /// never written — since before the watermark's window. Only a label for the log.
    fn is_drift(
        &self,
        object_guid: Uuid,
        when_changed: Option<Timestamp>,
        watermark_from: Option<Timestamp>,
    ) -> bool {
        let Some(changed) = when_changed else {
            return false;
        };
        match self.store.journal_for_object(&ObjectRef::Guid(object_guid)) {
            Ok(records) if !records.is_empty() => records.iter().any(|r| r.time > changed),
            _ => watermark_from.is_some_and(|limit| changed < limit),
        }
    }

    /// Commits the batch's outcomes and, in the same transaction, deletes the intents of the
    /// chunk just written; then the batch's objects are durable for the watermark.
    fn flush(
        &mut self,
        batch: &mut Vec<(String, ObjectOutcome)>,
        tracker: &mut WatermarkTracker,
    ) -> Result<(), EngineError> {
        if batch.is_empty() && self.intents_to_clear.is_empty() {
            return Ok(());
        }
        let outcomes: Vec<ObjectOutcome> = batch.iter().map(|(_, o)| o.clone()).collect();
        let intents = std::mem::take(&mut self.intents_to_clear);
        self.store
            .record_outcomes_clearing_intents(&outcomes, &intents)?;
        for o in &outcomes {
            if o.log.status == LogStatus::Failure
                && let Some(r) = &o.log.reason
            {
                *self.failure_causes.entry(r.code.clone()).or_default() += 1;
                self.failure_examples
                    .entry(r.code.clone())
                    .or_insert_with(|| r.message.clone());
            }
        }
        for (id, _) in batch.drain(..) {
            tracker.durable(&id);
        }
        Ok(())
    }

    // ---------------------------------------------------------------------------------------
    // Cycles
    // ---------------------------------------------------------------------------------------

    fn next_kind(&self, mode: CycleMode) -> Result<(CycleKind, Option<Watermark>), EngineError> {
        let previous = self.store.watermark()?;
        let kind = match (mode, &previous) {
            (_, None) => CycleKind::Initial,
            (CycleMode::Full, Some(_)) => CycleKind::FullReconcile,
            (CycleMode::Auto, Some(_)) => CycleKind::Delta,
        };
        Ok((kind, previous))
    }

    fn stream_for(&self, kind: CycleKind, previous: Option<&Watermark>) -> crate::MailboxStream {
        match (kind, previous) {
            (CycleKind::Delta, Some(w)) => self
                .source
                .changed_since(w.changed_since, self.options.overlap),
            _ => self.source.all(),
        }
    }

    async fn schema(&self) -> Result<Arc<Schema>, EngineError> {
        match self.directory.schema().await {
            Ok(s) => Ok(s),
            Err(_) => self
                .directory
                .refresh_schema()
                .await
                .map_err(EngineError::Directory),
        }
    }

    fn check_job(&self) -> Result<(), EngineError> {
        match self.store.job_state()? {
            JobState::ThresholdExceeded { cycle } => Err(EngineError::Held { cycle }),
            JobState::Paused => Err(EngineError::Paused),
            state => crate::quarantine::check(&state, Timestamp::now())
                .map_err(|(reason, next_retry)| EngineError::Quarantined { reason, next_retry }),
        }
    }

    /// Run one cycle: import → scope → match → plan → guard → threshold → write → record →
    /// watermark.
    pub async fn run_cycle(&mut self, mode: CycleMode) -> Result<CycleReport, EngineError> {
        self.check_job()?;
        let (kind, previous) = self.next_kind(mode)?;
        let started = Timestamp::now();
        let cycle = self.store.begin_cycle(kind, started)?;
        let result = match self.reconcile_intents(Some(cycle)).await {
            Ok(()) => self.cycle_body(cycle, kind, previous).await,
            Err(e) => Err(e),
        };
        self.match_index = None;
        match result {
            Ok(report) => Ok(report),
            Err(e) => {
                // A cycle the body already ended keeps its counts and status.
                let running = matches!(
                    self.store.cycle(cycle),
                    Ok(Some(c)) if c.status == CycleStatus::Running
                );
                if !running {
                    return Err(e);
                }
                // Failing as a whole before any object (cannot bind, DC unreachable, token
                // refused) is a quarantine cause.
                let before_any = self.cycle_imported == 0
                    && matches!(e, EngineError::Directory(_) | EngineError::Source(_));
                let now = Timestamp::now();
                let status = if before_any {
                    CycleStatus::Quarantined {
                        reason: e.to_string(),
                    }
                } else {
                    CycleStatus::Failed {
                        reason: e.to_string(),
                    }
                };
                let _ = self
                    .store
                    .finish_cycle(cycle, now, &CycleCounts::default(), &status);
                if before_any {
                    let _ = crate::quarantine::enter(&mut self.store, &e.to_string(), now);
                }
                Err(e)
            }
        }
    }

    async fn cycle_body(
        &mut self,
        cycle: CycleId,
        kind: CycleKind,
        previous: Option<Watermark>,
    ) -> Result<CycleReport, EngineError> {
        // Full cycles re-read the schema (picking up an extension without a restart); deltas
        // use the cache, which a schema-like write error refreshes.
        let schema = match kind {
            CycleKind::Initial | CycleKind::FullReconcile => self
                .directory
                .refresh_schema()
                .await
                .map_err(EngineError::Directory)?,
            _ => self.schema().await?,
        };
        // Initial and full cycles match every mailbox: read the match keys once.
        if matches!(kind, CycleKind::Initial | CycleKind::FullReconcile) {
            self.load_match_index().await;
        }
        let floor = match (&previous, kind) {
            (Some(w), CycleKind::Delta | CycleKind::FullReconcile) => w.changed_since,
            _ => Timestamp::MIN,
        };
        let drift_before = match kind {
            CycleKind::FullReconcile => previous.as_ref().map(|w| w.query_from()),
            _ => None,
        };
        self.failure_causes.clear();
        self.failure_examples.clear();
        self.cycle_imported = 0;
        self.ad_unreachable = None;
        let cycle_started = Timestamp::now();
        let mut w = Work {
            seen: HashSet::new(),
            tracker: WatermarkTracker::new(floor),
            counts: CycleCounts::default(),
            batch: Vec::new(),
            to_write: Vec::new(),
            spill: None,
            removing: 0,
        };
        let mut stream = self.stream_for(kind, previous.as_ref());
        let mut fatal: Option<SourceError> = None;
        let mut stream_complete = true;
        // Mailboxes read and not yet evaluated (evaluated `evaluate_concurrency` at a time).
        let mut pending: Vec<Mailbox> = Vec::new();
        loop {
            // A stop request abandons a page still being read (nothing was written for it).
            let item = tokio::select! {
                item = stream.next() => item,
                _ = wait_for(self.cancel.clone()) => None,
            };
            let Some(item) = item else {
                break;
            };
            if self.cancelled() {
                stream_complete = false;
                break;
            }
            let mailbox = match item {
                Ok(m) => m,
                Err(e) if e.per_record => {
                    tracing::warn!(error = %e, "a mailbox record could not be read; skipped");
                    let (id, outcome) = unreadable_outcome(&e, cycle);
                    // Once per cycle (a listing may repeat a record); not retried from escrow
                    // in this cycle.
                    if w.seen.insert(id.clone()) {
                        w.counts.imported += 1;
                        self.cycle_imported = w.counts.imported;
                        w.counts.failed += 1;
                        w.batch.push((id, outcome));
                    }
                    continue;
                }
                Err(e) => {
                    fatal = Some(e);
                    stream_complete = false;
                    break;
                }
            };
            w.counts.imported += 1;
            self.cycle_imported = w.counts.imported;
            if w.counts.imported.is_multiple_of(100) {
                (self.progress)(Progress::Imported(w.counts.imported));
            }
            pending.push(mailbox);
            if pending.len() >= self.options.evaluate_concurrency.max(1) {
                self.take_all(&mut pending, &schema, &mut w, cycle, drift_before)
                    .await?;
                if w.batch.len() >= self.options.batch {
                    self.flush(&mut w.batch, &mut w.tracker)?;
                }
            }
        }
        self.take_all(&mut pending, &schema, &mut w, cycle, drift_before)
            .await?;
        drop(stream);
        if self.cancelled() {
            stream_complete = false;
        }
        // Escrowed objects that are due.
        if stream_complete && !self.cancelled() {
            let due = self
                .store
                .escrow_due(Timestamp::now(), self.options.escrow_per_cycle)?;
            for entry in due {
                if self.cancelled() {
                    break;
                }
                if w.seen.contains(&entry.cloud_id) {
                    continue;
                }
                match self.source.get(&entry.cloud_id).await {
                    Ok(Some(mailbox)) => {
                        w.counts.imported += 1;
                        self.take(mailbox, &schema, &mut w, cycle, drift_before)
                            .await?;
                    }
                    Ok(None) => {
                        self.store.clear_escrow(&entry.cloud_id)?;
                    }
                    Err(e) if e.per_record => {
                        // Still unreadable: one more failed attempt (the back-off grows).
                        tracing::warn!(cloud_id = %entry.cloud_id, error = %e, "escrow retry: the mailbox record still cannot be read");
                        w.counts.imported += 1;
                        w.counts.failed += 1;
                        w.batch.push(unreadable_outcome(&e, cycle));
                    }
                    Err(e) => {
                        tracing::warn!(cloud_id = %entry.cloud_id, error = %e, "escrow retry could not read the mailbox");
                    }
                }
            }
        }
        self.flush(&mut w.batch, &mut w.tracker)?;
        (self.progress)(Progress::Imported(w.counts.imported));

        if let Some(e) = fatal {
            let reason = format!("reading Exchange Online failed: {e}");
            let now = Timestamp::now();
            if w.counts.imported == 0 {
                // Nothing could be read (token refused, service unreachable): quarantine.
                let status = CycleStatus::Quarantined {
                    reason: reason.clone(),
                };
                self.store.finish_cycle(cycle, now, &w.counts, &status)?;
                crate::quarantine::enter(&mut self.store, &reason, now)?;
            } else {
                let status = CycleStatus::Failed { reason };
                self.store.finish_cycle(cycle, now, &w.counts, &status)?;
            }
            return Err(EngineError::Source(e));
        }

        // The change threshold: everything is planned before anything is written.
        let removing = w.removing;
        if stream_complete && removing > u64::from(self.settings.threshold) {
            let mut staged = Vec::new();
            for p in &w.to_write {
                if let Some(obj) = StagedObject::of(p) {
                    staged.push(obj.to_staged_plan().map_err(|e| EngineError::StagedPlan {
                        cycle,
                        problem: e.to_string(),
                    })?);
                }
            }
            let now = Timestamp::now();
            self.store.stage_changes(cycle, now, &staged)?;
            // The plans beyond max_plans_in_memory are staged too, a bounded batch at a time.
            if let Some(spill) = w.spill.take() {
                let mut reader = spill.read().map_err(EngineError::Spill)?;
                let mut batch = Vec::new();
                while let Some((_, obj)) = reader.next_object().map_err(EngineError::Spill)? {
                    batch.push(obj.to_staged_plan().map_err(|e| EngineError::StagedPlan {
                        cycle,
                        problem: e.to_string(),
                    })?);
                    if batch.len() >= self.options.max_plans_in_memory.max(1) {
                        self.store.stage_changes(cycle, now, &batch)?;
                        batch.clear();
                    }
                }
                self.store.stage_changes(cycle, now, &batch)?;
            }
            self.store
                .set_job_state(&JobState::ThresholdExceeded { cycle })?;
            let status = CycleStatus::ThresholdExceeded;
            self.store.finish_cycle(cycle, now, &w.counts, &status)?;
            tracing::warn!(%cycle, removing, threshold = self.settings.threshold, "change threshold exceeded: nothing written; review with `exo-writeback preview`, apply with `exo-writeback approve {cycle}`");
            return Ok(CycleReport {
                cycle,
                kind,
                counts: w.counts,
                status,
                watermark: None,
                removing,
                failure_causes: self.failure_causes.clone(),
            });
        }

        // Write: one modify per object.
        let total = (w.to_write.len() as u64) + w.spill.as_ref().map_or(0, Spill::len);
        let mut done = 0u64;
        let mut complete = stream_complete;
        let to_write = std::mem::take(&mut w.to_write);
        for p in to_write {
            if self.cancelled() || self.ad_unreachable.is_some() {
                complete = false;
                break;
            }
            self.write_and_record(p, &mut w, cycle, drift_before)
                .await?;
            done += 1;
            if done.is_multiple_of(50) || done == total {
                (self.progress)(Progress::Writing { done, total });
            }
        }
        // Plans beyond `max_plans_in_memory`: read back from the spill file, then written.
        if let Some(spill) = w.spill.take()
            && complete
        {
            let mut reader = spill.read().map_err(EngineError::Spill)?;
            while let Some((p, _)) = reader.next_object().map_err(EngineError::Spill)? {
                if self.cancelled() || self.ad_unreachable.is_some() {
                    complete = false;
                    break;
                }
                self.write_and_record(p, &mut w, cycle, drift_before)
                    .await?;
                done += 1;
                if done.is_multiple_of(50) || done == total {
                    (self.progress)(Progress::Writing { done, total });
                }
            }
        }
        complete &= self.write_queued(&mut w, cycle, drift_before).await?;
        self.flush(&mut w.batch, &mut w.tracker)?;

        let now = Timestamp::now();
        let watermark = if stream_complete {
            // Everything read has a durable outcome or stays pending (cancelled writes):
            // the tracker never passes a pending object.
            let mut wm = w.tracker.watermark(cycle, self.options.overlap);
            if wm.changed_since == Timestamp::MIN {
                // A full read that saw no mailbox: everything changed before it began is
                // processed (there was nothing); the overlap covers clock skew.
                wm.changed_since = cycle_started;
            }
            self.store.set_watermark(&wm)?;
            Some(wm)
        } else {
            None
        };
        let quarantine = if complete {
            crate::quarantine::dominant_cause(
                &w.counts,
                &self.failure_causes,
                &self.failure_examples,
            )
        } else {
            None
        };
        let quarantine = quarantine.or_else(|| {
            self.ad_unreachable.as_ref().map(|e| {
                format!(
                    "AD became unreachable while writing ({e}); the objects not yet written stay \
                     pending for the next cycle"
                )
            })
        });
        let status = if let Some(reason) = &quarantine {
            CycleStatus::Quarantined {
                reason: reason.clone(),
            }
        } else if complete {
            CycleStatus::Completed
        } else {
            CycleStatus::Failed {
                reason:
                    "stopped before the end (signal); the next cycle resumes from the watermark"
                        .into(),
            }
        };
        self.store.finish_cycle(cycle, now, &w.counts, &status)?;
        if let Some(reason) = &quarantine {
            crate::quarantine::enter(&mut self.store, reason, now)?;
        } else if complete {
            // A good cycle: clears a quarantine.
            self.store.set_job_state(&JobState::Active)?;
        }
        Ok(CycleReport {
            cycle,
            kind,
            counts: w.counts,
            status,
            watermark,
            removing,
            failure_causes: self.failure_causes.clone(),
        })
    }

    /// Queues one planned object for writing; a full queue is written as one chunk.
    async fn write_and_record(
        &mut self,
        p: Processed,
        w: &mut Work,
        cycle: CycleId,
        drift_before: Option<Timestamp>,
    ) -> Result<(), EngineError> {
        self.write_queue.push(p);
        if self.write_queue.len() >= self.options.batch.max(1)
            || w.batch.len() >= self.options.batch
        {
            self.write_queued(w, cycle, drift_before).await?;
        }
        Ok(())
    }

    /// Writes the queued objects as one chunk: their intents committed in one transaction
    /// (what each outcome will be if its modify succeeds), then one modify per object, then
    /// their outcomes committed with the deletion of the intents (in [`Engine::flush`]). A kill
    /// in between leaves the intents for the next cycle's reconciliation
    /// (`crate::intents::reconcile`). Returns `false` when a stop request left queued objects
    /// unwritten (they have no outcome, so the watermark stays before them).
    async fn write_queued(
        &mut self,
        w: &mut Work,
        cycle: CycleId,
        drift_before: Option<Timestamp>,
    ) -> Result<bool, EngineError> {
        let queue = std::mem::take(&mut self.write_queue);
        if self.cancelled() || self.ad_unreachable.is_some() {
            return Ok(queue.is_empty());
        }
        let mut intents = Vec::new();
        // The intent of each queued object (its id), in queue order.
        let mut intent_ids = Vec::new();
        for p in &queue {
            let mut id = None;
            if let Disposition::Write { plan, .. } = &p.disposition
                && plan.modify.is_some()
            {
                let success = self.outcome(p.clone(), cycle, WriteResult::Written, drift_before);
                if let Some(intent) = WriteIntent::from_success(&p.cloud_id, &success) {
                    id = Some(intent.id);
                    intents.push(intent);
                }
            }
            intent_ids.push(id);
        }
        self.store.record_intents(&intents)?;
        self.intents_to_clear
            .extend(intents.into_iter().map(|i| i.id));
        let mut all_written = true;
        for (p, intent) in queue.into_iter().zip(intent_ids) {
            if self.cancelled() {
                // Stop after the current object; the intents of the rest are deleted with the
                // outcomes of those written.
                all_written = false;
                break;
            }
            let mut result = self.write(&p).await;
            for &wait in &self.options.reconnect_waits {
                if !matches!(&result, WriteResult::Failed(e) if e.connection) || self.cancelled() {
                    break;
                }
                tracing::warn!(cloud_id = %p.cloud_id, wait_ms = wait.as_millis() as u64, "AD cannot be reached; sending the modify again after a wait");
                tokio::time::sleep(wait).await;
                result = self.write(&p).await;
            }
            if let WriteResult::Failed(e) = &result
                && e.connection
            {
                // AD is gone: stop writing. This object and the rest of the queue stay
                // pending (no outcome: the watermark stays before them). This object's
                // intent stays too: the modify may have reached AD before the connection
                // broke, and the next cycle's reconciliation logs it if it did.
                tracing::error!(cloud_id = %p.cloud_id, error = %e, "AD stayed unreachable; the cycle stops writing and the rest waits for the next cycle");
                if let Some(id) = intent {
                    self.intents_to_clear.retain(|i| *i != id);
                }
                self.ad_unreachable = Some(e.clone());
                all_written = false;
                break;
            }
            match &result {
                WriteResult::Written => w.counts.written += 1,
                WriteResult::Failed(e) => {
                    w.counts.failed += 1;
                    tracing::warn!(cloud_id = %p.cloud_id, dn = ?p.target.dn, error = %e, "write failed; the object goes to escrow");
                }
                _ => w.counts.failed += 1,
            }
            let id = p.cloud_id.clone();
            let outcome = self.outcome(p, cycle, result, drift_before);
            w.batch.push((id, outcome));
        }
        self.flush(&mut w.batch, &mut w.tracker)?;
        Ok(all_written)
    }

    /// Before anything else a cycle (or approve, undo, provision) does: forgets a previous
    /// cycle's unwritten queue and reconciles the intents a killed process left
    /// (`crate::intents`). Directory errors keep the intents and do not stop the caller.
    async fn reconcile_intents(&mut self, by: Option<CycleId>) -> Result<(), EngineError> {
        self.write_queue.clear();
        self.intents_to_clear.clear();
        crate::intents::reconcile(&self.directory, &mut self.store, by).await?;
        Ok(())
    }

    /// Evaluate the `pending` mailboxes concurrently (their AD reads overlap; nothing is
    /// written here), then take each result in the order read.
    async fn take_all(
        &mut self,
        pending: &mut Vec<Mailbox>,
        schema: &Schema,
        w: &mut Work,
        cycle: CycleId,
        drift_before: Option<Timestamp>,
    ) -> Result<(), EngineError> {
        let mut admitted = Vec::new();
        for mailbox in pending.drain(..) {
            let id = cloud_id(&mailbox);
            if !w.seen.insert(id.clone()) {
                continue;
            }
            if let Some(t) = mailbox.when_changed_utc {
                w.tracker.seen(&id, t);
            }
            admitted.push((id, mailbox));
        }
        let evaluated =
            futures::future::join_all(admitted.iter().map(|(_, m)| self.evaluate(m, schema))).await;
        for ((id, _), p) in admitted.into_iter().zip(evaluated) {
            self.take_evaluated(id, p, w, cycle, drift_before)?;
        }
        Ok(())
    }

    async fn take(
        &mut self,
        mailbox: Mailbox,
        schema: &Schema,
        w: &mut Work,
        cycle: CycleId,
        drift_before: Option<Timestamp>,
    ) -> Result<(), EngineError> {
        let id = cloud_id(&mailbox);
        if !w.seen.insert(id.clone()) {
            return Ok(());
        }
        if let Some(t) = mailbox.when_changed_utc {
            w.tracker.seen(&id, t);
        }
        let p = self.evaluate(&mailbox, schema).await;
        self.take_evaluated(id, p, w, cycle, drift_before)
    }

    fn take_evaluated(
        &mut self,
        id: String,
        p: Processed,
        w: &mut Work,
        cycle: CycleId,
        drift_before: Option<Timestamp>,
    ) -> Result<(), EngineError> {
        if !matches!(&p.disposition, Disposition::Skipped(d) if d.code == OutcomeCode::NotInScope) {
            w.counts.in_scope += 1;
        }
        match &p.disposition {
            Disposition::Write { plan, .. } => {
                if plan.removes_values {
                    w.removing += 1;
                }
                if w.to_write.len() < self.options.max_plans_in_memory {
                    w.to_write.push(p);
                } else {
                    if w.spill.is_none() {
                        w.spill = Some(
                            Spill::new(self.options.spill_dir.as_deref())
                                .map_err(EngineError::Spill)?,
                        );
                    }
                    if let Some(spill) = w.spill.as_mut() {
                        spill.push(&p).map_err(EngineError::Spill)?;
                    }
                }
                return Ok(());
            }
            Disposition::Skipped(_) => w.counts.skipped += 1,
            Disposition::Failed(_) => w.counts.failed += 1,
            Disposition::InSync => w.counts.unchanged += 1,
        }
        let outcome = self.outcome(p, cycle, WriteResult::NotNeeded, drift_before);
        w.batch.push((id, outcome));
        Ok(())
    }

    // ---------------------------------------------------------------------------------------
    // Preview and approve
    // ---------------------------------------------------------------------------------------

    fn preview_item(p: &Processed) -> Option<PreviewItem> {
        let (code, reason, removes, changes) = match &p.disposition {
            Disposition::InSync => return None,
            Disposition::Skipped(d) | Disposition::Failed(d) => (
                d.code.as_str().to_string(),
                Some(d.reason.clone()),
                false,
                Vec::new(),
            ),
            Disposition::Write { plan, .. } => (
                OutcomeCode::Updated.as_str().to_string(),
                None,
                plan.removes_values,
                modified_of(plan),
            ),
        };
        Some(PreviewItem {
            cloud_id: p.cloud_id.clone(),
            primary_smtp_address: p.source.primary_smtp_address.clone(),
            dn: p.target.dn.clone(),
            code,
            reason,
            removes_values: removes,
            changes,
        })
    }

    /// What the next cycle would write, per object and attribute; writes nothing (not even to
    /// the store). Also lists the changes of a held cycle.
    pub async fn preview(&mut self, mode: CycleMode) -> Result<Preview, EngineError> {
        let (kind, previous) = self.next_kind(mode)?;
        let schema = self.schema().await?;
        if matches!(kind, CycleKind::Initial | CycleKind::FullReconcile) {
            self.load_match_index().await;
        }
        let mut stream = self.stream_for(kind, previous.as_ref());
        let mut items = Vec::new();
        let mut seen = HashSet::new();
        let (mut would_write, mut removing) = (0u64, 0u64);
        while let Some(item) = stream.next().await {
            let mailbox = match item {
                Ok(m) => m,
                Err(e) if e.per_record => {
                    let record = e.record.clone().unwrap_or_default();
                    items.push(PreviewItem {
                        cloud_id: record.external_directory_object_id.unwrap_or_default(),
                        primary_smtp_address: record.primary_smtp_address,
                        dn: None,
                        code: OutcomeCode::MalformedMailboxRecord.as_str().to_string(),
                        reason: Some(e.message),
                        removes_values: false,
                        changes: Vec::new(),
                    });
                    continue;
                }
                Err(e) => {
                    self.match_index = None;
                    return Err(EngineError::Source(e));
                }
            };
            if !seen.insert(cloud_id(&mailbox)) {
                continue;
            }
            let p = self.evaluate(&mailbox, &schema).await;
            if let Disposition::Write { plan, .. } = &p.disposition {
                would_write += 1;
                if plan.removes_values {
                    removing += 1;
                }
            }
            items.extend(Self::preview_item(&p));
        }
        drop(stream);
        self.match_index = None;
        let held = match self.store.job_state()? {
            JobState::ThresholdExceeded { cycle } => Some(self.held_changes(cycle)?),
            _ => match self.store.pending_staged_cycles()?.last() {
                Some(c) => Some(self.held_changes(*c)?),
                None => None,
            },
        };
        Ok(Preview {
            kind: kind.as_str().to_string(),
            items,
            would_write,
            removing,
            threshold: self.settings.threshold,
            would_be_held: removing > u64::from(self.settings.threshold),
            held,
        })
    }

    fn held_changes(&self, cycle: CycleId) -> Result<HeldChanges, EngineError> {
        let staged = self
            .store
            .staged_changes(cycle)?
            .ok_or_else(|| EngineError::NotHeld {
                cycle,
                why: String::new(),
            })?;
        let mut items = Vec::new();
        for plan in &staged.plans {
            let obj =
                StagedObject::from_staged_plan(plan).map_err(|e| EngineError::StagedPlan {
                    cycle,
                    problem: e.to_string(),
                })?;
            items.push(PreviewItem {
                cloud_id: obj.cloud_id,
                primary_smtp_address: obj.source.primary_smtp_address,
                dn: Some(obj.dn),
                code: "Held".into(),
                reason: None,
                removes_values: obj.removes_values,
                changes: obj.modified,
            });
        }
        Ok(HeldChanges { cycle, items })
    }

    /// Apply the changes a held cycle staged, and release the job.
    pub async fn approve(&mut self, held: CycleId) -> Result<CycleReport, EngineError> {
        let staged = self
            .store
            .staged_changes(held)?
            .ok_or_else(|| EngineError::NotHeld {
                cycle: held,
                why: " (no staged changes)".into(),
            })?;
        if staged.decision != exo_writeback_core::provisioning::StagedDecision::Pending {
            return Err(EngineError::NotHeld {
                cycle: held,
                why: format!(" (already {:?})", staged.decision),
            });
        }
        let mut objects = Vec::new();
        for plan in &staged.plans {
            objects.push(StagedObject::from_staged_plan(plan).map_err(|e| {
                EngineError::StagedPlan {
                    cycle: held,
                    problem: e.to_string(),
                }
            })?);
        }
        let cycle = self
            .store
            .begin_cycle(CycleKind::Approve, Timestamp::now())?;
        self.reconcile_intents(Some(cycle)).await?;
        let schema = self.schema().await?;
        let mut counts = CycleCounts::default();
        // In chunks, like a cycle's write phase. Each object is read first: only an object that
        // still holds the values its change was planned from is written (approving a stale plan
        // would overwrite a newer on-premises change); one that already holds the approved
        // values (an earlier, interrupted `approve` of the same cycle wrote it and logged it
        // from its intent) is not written or logged as applied again.
        for chunk in objects.chunks(self.options.batch.max(1)) {
            let mut items: Vec<(String, Option<ObjectModify>, ObjectOutcome)> = Vec::new();
            for obj in chunk {
                let started = Timestamp::now();
                let modify = obj.modify().map_err(|problem| EngineError::StagedPlan {
                    cycle: held,
                    problem,
                })?;
                let check = self.held_object_state(obj, &schema).await;
                let outcome = |status: LogStatus,
                               detail: Option<OutcomeDetail>,
                               export: Step,
                               journal: Vec<JournalRecord>| {
                    let reason = detail.clone().map(Reason::from);
                    let escrow = match &detail {
                        Some(d) if status == LogStatus::Failure => EscrowUpdate::Failed {
                            failure: EscrowFailure {
                                cloud_id: obj.cloud_id.clone(),
                                source: obj.source.clone(),
                                target: obj.target.clone(),
                                error: Reason::from(d.clone()),
                            },
                            failed_at: Timestamp::now(),
                        },
                        _ => EscrowUpdate::Clear {
                            cloud_id: obj.cloud_id.clone(),
                        },
                    };
                    ObjectOutcome {
                        log: ProvisioningLogEntry {
                            id: LogEntryId(Uuid::new_v4()),
                            cycle,
                            time: started,
                            duration: Timestamp::now().duration_since(started),
                            source: obj.source.clone(),
                            target: obj.target.clone(),
                            action: if journal.is_empty() && status != LogStatus::Failure {
                                Action::Other
                            } else {
                                Action::Update
                            },
                            status,
                            reason,
                            steps: Steps {
                                import: step(
                                    StepStatus::Skipped,
                                    format!("staged by cycle {held}"),
                                ),
                                scoping: step(
                                    StepStatus::Skipped,
                                    format!("staged by cycle {held}"),
                                ),
                                matching: step(StepStatus::Success, obj.dn.to_string()),
                                export,
                            },
                            modified: obj.modified.clone(),
                        },
                        journal,
                        join: JoinUpdate::Keep,
                        escrow,
                    }
                };
                match check {
                    HeldState::Unchanged => {
                        let journal = obj
                            .modified
                            .iter()
                            .map(|m| JournalRecord {
                                cycle,
                                time: started,
                                object_guid: obj.object_guid,
                                dn: obj.dn.clone(),
                                attribute: m.attribute.clone(),
                                previous: m.old.clone(),
                                new: m.new.clone(),
                            })
                            .collect();
                        let export = step(
                            StepStatus::Success,
                            format!("applied the changes held by cycle {held}"),
                        );
                        items.push((
                            obj.cloud_id.clone(),
                            Some(modify),
                            outcome(LogStatus::Success, None, export, journal),
                        ));
                    }
                    HeldState::AlreadyApplied => {
                        counts.unchanged += 1;
                        let export = step(
                            StepStatus::Skipped,
                            format!(
                                "already holds the values held by cycle {held}; nothing written"
                            ),
                        );
                        items.push((
                            obj.cloud_id.clone(),
                            None,
                            outcome(LogStatus::Success, None, export, Vec::new()),
                        ));
                    }
                    HeldState::Refused(d) => {
                        counts.failed += 1;
                        let export = step(StepStatus::Failure, d.to_string());
                        items.push((
                            obj.cloud_id.clone(),
                            None,
                            outcome(LogStatus::Failure, Some(d), export, Vec::new()),
                        ));
                    }
                }
            }
            self.write_chunk(items, true, &mut counts).await?;
        }
        let now = Timestamp::now();
        self.store.mark_staged_approved(held, cycle, now)?;
        if self.store.job_state()? == (JobState::ThresholdExceeded { cycle: held }) {
            self.store.set_job_state(&JobState::Active)?;
        }
        let status = CycleStatus::Completed;
        self.store.finish_cycle(cycle, now, &counts, &status)?;
        Ok(CycleReport {
            cycle,
            kind: CycleKind::Approve,
            counts,
            status,
            watermark: None,
            removing: 0,
            failure_causes: BTreeMap::new(),
        })
    }

    /// Writes one chunk of `approve` or `undo` behind write-ahead intents: the intents of the
    /// items with a modify committed in one transaction, the modifies sent in order, then the
    /// outcomes committed with the intents' deletion. Each item is `(cloud id, modify to send,
    /// outcome if it succeeds — or the final outcome when there is nothing to send)`. A failed
    /// modify turns its outcome into a Failure with nothing journaled (and, with
    /// `escrow_failures`, into escrow under its cloud id).
    async fn write_chunk(
        &mut self,
        items: Vec<(String, Option<ObjectModify>, ObjectOutcome)>,
        escrow_failures: bool,
        counts: &mut CycleCounts,
    ) -> Result<(), EngineError> {
        let intents: Vec<WriteIntent> = items
            .iter()
            .filter_map(|(cloud_id, modify, outcome)| {
                modify.as_ref()?;
                WriteIntent::from_success(cloud_id, outcome)
            })
            .collect();
        self.store.record_intents(&intents)?;
        let mut outcomes = Vec::new();
        for (cloud_id, modify, mut outcome) in items {
            let Some(modify) = modify else {
                outcomes.push(outcome);
                continue;
            };
            match self.directory.modify(&modify).await {
                Ok(()) => counts.written += 1,
                Err(e) => {
                    counts.failed += 1;
                    let d = ldap_failure(&e);
                    outcome.journal.clear();
                    outcome.log.steps.export = step(StepStatus::Failure, d.to_string());
                    outcome.log.status = LogStatus::Failure;
                    outcome.log.reason = Some(Reason::from(d.clone()));
                    if escrow_failures {
                        outcome.escrow = EscrowUpdate::Failed {
                            failure: EscrowFailure {
                                cloud_id,
                                source: outcome.log.source.clone(),
                                target: outcome.log.target.clone(),
                                error: Reason::from(d),
                            },
                            failed_at: Timestamp::now(),
                        };
                    }
                }
            }
            outcome.log.duration = Timestamp::now().duration_since(outcome.log.time);
            outcomes.push(outcome);
        }
        let ids: Vec<Uuid> = intents.iter().map(|i| i.id).collect();
        self.store
            .record_outcomes_clearing_intents(&outcomes, &ids)?;
        Ok(())
    }

    /// Where a held object stands now: still as its change was planned from, already holding
    /// the approved values, or changed since (or unreadable: refused, with the reason).
    async fn held_object_state(&self, obj: &StagedObject, schema: &Schema) -> HeldState {
        let attrs: Vec<String> = obj.modified.iter().map(|m| m.attribute.clone()).collect();
        let current = match self.directory.read_by_guid(&obj.object_guid, &attrs).await {
            Ok(Some(current)) => current,
            Ok(None) => {
                return HeldState::Refused(OutcomeDetail::new(
                    OutcomeCode::ChangedSinceHeld,
                    format!(
                        "{} (objectGUID {}) no longer exists; nothing written",
                        obj.dn, obj.object_guid
                    ),
                ));
            }
            Err(e) => return HeldState::Refused(ldap_failure(&e)),
        };
        let syntax = |attr: &str| schema.get(attr).map(|a| &a.syntax);
        if obj.modified.iter().all(|m| {
            crate::intents::holds(
                syntax(&m.attribute),
                current.attributes.get(&m.attribute),
                &m.new,
            )
        }) {
            return HeldState::AlreadyApplied;
        }
        let changed: Vec<&str> = obj
            .modified
            .iter()
            .filter(|m| {
                let now = current.attributes.get(&m.attribute);
                !crate::intents::holds(syntax(&m.attribute), now, &m.old)
                    && !crate::intents::holds(syntax(&m.attribute), now, &m.new)
            })
            .map(|m| m.attribute.as_str())
            .collect();
        if changed.is_empty() {
            return HeldState::Unchanged;
        }
        HeldState::Refused(OutcomeDetail::new(
            OutcomeCode::ChangedSinceHeld,
            format!(
                "{} changed in AD after the change was held ({} no longer hold the values it \
                 was planned from); nothing written",
                obj.dn,
                changed.join(", ")
            ),
        ))
    }

    // ---------------------------------------------------------------------------------------
    // Provision on demand
    // ---------------------------------------------------------------------------------------

    /// Turn a DN into a mailbox identity (its ExternalDirectoryObjectId, mail or UPN).
    async fn identity_from_dn(&self, dn: &str) -> Result<Option<String>, DirectoryError> {
        let attrs = [
            "msDS-ExternalDirectoryObjectId".to_string(),
            "mail".to_string(),
            "userPrincipalName".to_string(),
        ];
        let Some(obj) = self.directory.read_by_dn(dn, &attrs).await? else {
            return Ok(None);
        };
        for name in &attrs {
            if let Some(v) = obj.attributes.get(name).first().and_then(|v| v.as_text()) {
                let v = v.strip_prefix("User_").unwrap_or(v);
                if !v.is_empty() {
                    return Ok(Some(v.to_string()));
                }
            }
        }
        Ok(None)
    }

    /// Run the four steps for one mailbox now. `identity`: UPN or SMTP address,
    /// ExternalDirectoryObjectId, `User_<id>`, or an AD DN.
    pub async fn provision(
        &mut self,
        identity: &str,
        dry_run: bool,
    ) -> Result<ProvisionReport, EngineError> {
        let started = Timestamp::now();
        let looks_like_dn = identity.contains('=')
            && identity.contains(',')
            && exo_writeback_core::ldap_text::Dn::parse(identity).is_ok();
        let resolved = if looks_like_dn {
            self.identity_from_dn(identity)
                .await
                .map_err(EngineError::Directory)?
        } else {
            let id = identity.trim();
            Some(id.strip_prefix("User_").unwrap_or(id).to_string())
        };
        let mailbox = match &resolved {
            Some(id) if !id.is_empty() => self.source.get(id).await.map_err(EngineError::Source)?,
            _ => None,
        };
        let Some(mailbox) = mailbox else {
            let why = if looks_like_dn && resolved.is_none() {
                format!(
                    "no AD object {identity} with a mailbox identity (msDS-ExternalDirectoryObjectId, mail or userPrincipalName)"
                )
            } else {
                format!("Exchange Online has no mailbox {identity:?}")
            };
            let entry = ProvisioningLogEntry {
                id: LogEntryId(Uuid::new_v4()),
                cycle: CycleId(0),
                time: started,
                duration: Timestamp::now().duration_since(started),
                source: SourceIdentity::default(),
                target: TargetIdentity::default(),
                action: Action::Skip,
                status: LogStatus::Failure,
                reason: Some(Reason {
                    code: "MailboxNotFound".into(),
                    message: why.clone(),
                    recommended_action: "Check the identity: a UPN or SMTP address, an ExternalDirectoryObjectId, User_<id>, or the DN of a synced AD user.".into(),
                }),
                steps: Steps {
                    import: step(StepStatus::Failure, why),
                    scoping: Step::not_reached(),
                    matching: Step::not_reached(),
                    export: Step::not_reached(),
                },
                modified: Vec::new(),
            };
            return Ok(ProvisionReport {
                identity: identity.to_string(),
                dry_run,
                cycle: None,
                entry,
            });
        };
        let schema = self.schema().await?;
        let p = self.evaluate(&mailbox, &schema).await;
        if dry_run {
            let result = match &p.disposition {
                Disposition::Write { .. } => WriteResult::DryRun,
                _ => WriteResult::NotNeeded,
            };
            let mut outcome = self.outcome(p, CycleId(0), result, None);
            outcome.log.time = started;
            return Ok(ProvisionReport {
                identity: identity.to_string(),
                dry_run,
                cycle: None,
                entry: outcome.log,
            });
        }
        let cycle = self.store.begin_cycle(CycleKind::OnDemand, started)?;
        self.reconcile_intents(Some(cycle)).await?;
        // The write-ahead intent of the one modify (see `write_queued`).
        let intent = match &p.disposition {
            Disposition::Write { plan, .. } if plan.modify.is_some() => {
                let success = self.outcome(p.clone(), cycle, WriteResult::Written, None);
                WriteIntent::from_success(&p.cloud_id, &success)
            }
            _ => None,
        };
        if let Some(intent) = &intent {
            self.store.record_intents(std::slice::from_ref(intent))?;
        }
        let intents: Vec<Uuid> = intent.iter().map(|i| i.id).collect();
        let result = self.write(&p).await;
        let mut counts = CycleCounts {
            imported: 1,
            ..CycleCounts::default()
        };
        match (&p.disposition, &result) {
            (_, WriteResult::Written) => counts.written = 1,
            (_, WriteResult::Failed(_)) | (Disposition::Failed(_), _) => counts.failed = 1,
            (Disposition::Skipped(_), _) => counts.skipped = 1,
            _ => counts.unchanged = 1,
        }
        if !matches!(&p.disposition, Disposition::Skipped(d) if d.code == OutcomeCode::NotInScope) {
            counts.in_scope = 1;
        }
        let mut outcome = self.outcome(p, cycle, result, None);
        outcome.log.time = started;
        self.store
            .record_outcomes_clearing_intents(std::slice::from_ref(&outcome), &intents)?;
        self.store
            .finish_cycle(cycle, Timestamp::now(), &counts, &CycleStatus::Completed)?;
        Ok(ProvisionReport {
            identity: identity.to_string(),
            dry_run,
            cycle: Some(cycle),
            entry: outcome.log,
        })
    }

    /// Resolve an identity (objectGUID, DN, ExternalDirectoryObjectId, `User_<id>`, UPN or
    /// address) to the AD object journaled for it.
    pub async fn object_ref(&self, identity: &str) -> Result<ObjectRef, EngineError> {
        let id = identity.trim();
        if let Ok(guid) = Uuid::parse_str(id)
            && self.store.join(id)?.is_none()
        {
            return Ok(ObjectRef::Guid(guid));
        }
        if id.contains('=') && exo_writeback_core::ldap_text::Dn::parse(id).is_ok() {
            return Ok(ObjectRef::Dn(id.to_string()));
        }
        let bare = id.strip_prefix("User_").unwrap_or(id);
        if let Some(join) = self.store.join(bare)? {
            return Ok(ObjectRef::Guid(join.object_guid));
        }
        if let Some(m) = self.source.get(bare).await.map_err(EngineError::Source)?
            && let Some(join) = self.store.join(&cloud_id(&m))?
        {
            return Ok(ObjectRef::Guid(join.object_guid));
        }
        Err(EngineError::NothingToUndo(format!(
            "no AD object is known for {identity:?}"
        )))
    }

    // ---------------------------------------------------------------------------------------
    // Undo
    // ---------------------------------------------------------------------------------------

    /// Reads one object for undo and plans its restore: the modify to send (if any) and the
    /// outcome it has if the modify succeeds, or the final outcome when there is nothing to
    /// send (already restored, gone, unreadable).
    async fn plan_undo(
        &self,
        cycle: CycleId,
        guid: Uuid,
        dn: String,
        attrs: &Restore,
        counts: &mut CycleCounts,
    ) -> (Option<ObjectModify>, ObjectOutcome) {
        let started = Timestamp::now();
        let names: Vec<String> = attrs.iter().map(|(a, _)| a.clone()).collect();
        let current = self.directory.read_by_guid(&guid, &names).await;
        let mut steps = Steps {
            import: step(StepStatus::Skipped, "undo restores journaled values"),
            scoping: step(StepStatus::Skipped, ""),
            matching: Step::not_reached(),
            export: Step::not_reached(),
        };
        let target = TargetIdentity {
            dn: Some(dn.clone()),
            object_guid: Some(guid),
        };
        let mut modified = Vec::new();
        let mut journal = Vec::new();
        let mut modify = None;
        let (status, reason) = match current {
            Ok(Some(obj)) => {
                steps.matching = step(
                    StepStatus::Success,
                    format!("found {} by objectGUID {guid}", obj.dn),
                );
                let mut changes = Vec::new();
                for (attribute, previous) in attrs {
                    let now_values = obj.attributes.get(attribute).to_vec();
                    if now_values == *previous {
                        continue;
                    }
                    changes.push(AttrChange {
                        op: ModOp::Replace,
                        attribute: attribute.clone(),
                        values: previous.clone(),
                    });
                    modified.push(ModifiedProperty {
                        attribute: attribute.clone(),
                        old: now_values.clone(),
                        new: previous.clone(),
                    });
                }
                if changes.is_empty() {
                    counts.unchanged += 1;
                    steps.export = step(StepStatus::Success, "already holds the previous values");
                } else {
                    let now = Timestamp::now();
                    for m in &modified {
                        journal.push(JournalRecord {
                            cycle,
                            time: now,
                            object_guid: guid,
                            dn: obj.dn.clone(),
                            attribute: m.attribute.clone(),
                            previous: m.old.clone(),
                            new: m.new.clone(),
                        });
                    }
                    steps.export = step(
                        StepStatus::Success,
                        format!(
                            "restored {}",
                            modified
                                .iter()
                                .map(|m| m.attribute.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                    modify = Some(ObjectModify {
                        dn: obj.dn.clone(),
                        changes,
                    });
                }
                (LogStatus::Success, None)
            }
            Ok(None) => {
                counts.failed += 1;
                let d = OutcomeDetail::new(
                    OutcomeCode::TargetNotFound,
                    format!("{dn} (objectGUID {guid}) no longer exists"),
                );
                steps.matching = step(StepStatus::Failure, d.to_string());
                (LogStatus::Failure, Some(Reason::from(d)))
            }
            Err(e) => {
                counts.failed += 1;
                let d = ldap_failure(&e);
                steps.matching = step(StepStatus::Failure, d.to_string());
                (LogStatus::Failure, Some(Reason::from(d)))
            }
        };
        let outcome = ObjectOutcome {
            log: ProvisioningLogEntry {
                id: LogEntryId(Uuid::new_v4()),
                cycle,
                time: started,
                duration: Timestamp::now().duration_since(started),
                source: SourceIdentity::default(),
                target,
                action: if modified.is_empty() {
                    Action::Other
                } else {
                    Action::Update
                },
                status,
                reason,
                steps,
                modified,
            },
            journal,
            join: JoinUpdate::Keep,
            escrow: EscrowUpdate::Keep,
        };
        (modify, outcome)
    }

    /// Restore the journaled previous values of a cycle, or of an object's latest written
    /// cycle. The undo is itself a cycle (kind `Undo`) with log entries and journal.
    pub async fn undo(&mut self, target: UndoTarget) -> Result<CycleReport, EngineError> {
        // First log what an interrupted cycle applied, so its journal can be undone too.
        self.reconcile_intents(None).await?;
        let records = match &target {
            UndoTarget::Cycle(c) => self.store.journal_for_cycle(*c)?,
            UndoTarget::Object(r) => {
                let all = self.store.journal_for_object(r)?;
                match all.first().map(|r| r.cycle) {
                    Some(latest) => all.into_iter().filter(|r| r.cycle == latest).collect(),
                    None => Vec::new(),
                }
            }
        };
        if records.is_empty() {
            return Err(EngineError::NothingToUndo(match target {
                UndoTarget::Cycle(c) => format!("cycle {c} wrote nothing to AD"),
                UndoTarget::Object(r) => format!("no journaled change for {r:?}"),
            }));
        }
        // Per object (in journal order), per attribute: the oldest previous value wins
        // (records are newest first).
        let mut order: Vec<Uuid> = Vec::new();
        let mut restore: BTreeMap<Uuid, (String, Restore)> = BTreeMap::new();
        for r in &records {
            if !restore.contains_key(&r.object_guid) {
                order.push(r.object_guid);
            }
            let entry = restore
                .entry(r.object_guid)
                .or_insert_with(|| (r.dn.clone(), Vec::new()));
            match entry
                .1
                .iter_mut()
                .find(|(a, _)| a.eq_ignore_ascii_case(&r.attribute))
            {
                Some(slot) => slot.1 = r.previous.clone(),
                None => entry.1.push((r.attribute.clone(), r.previous.clone())),
            }
        }
        let cycle = self.store.begin_cycle(CycleKind::Undo, Timestamp::now())?;
        let mut counts = CycleCounts::default();
        // In chunks, like a cycle's write phase: read and plan the chunk, commit the intents of
        // its modifies, send them, commit the outcomes with the intents' deletion.
        for chunk in order.chunks(self.options.batch.max(1)) {
            let mut items = Vec::new();
            for guid in chunk {
                let Some((dn, attrs)) = restore.remove(guid) else {
                    continue;
                };
                items.push(self.plan_undo(cycle, *guid, dn, &attrs, &mut counts).await);
            }
            // An undo restores objects, not mailboxes: no cloud id, no join, no escrow.
            let items = items
                .into_iter()
                .map(|(modify, outcome)| (String::new(), modify, outcome))
                .collect();
            self.write_chunk(items, false, &mut counts).await?;
        }
        let status = CycleStatus::Completed;
        self.store
            .finish_cycle(cycle, Timestamp::now(), &counts, &status)?;
        Ok(CycleReport {
            cycle,
            kind: CycleKind::Undo,
            counts,
            status,
            watermark: None,
            removing: 0,
            failure_causes: BTreeMap::new(),
        })
    }
}
