//! Provision on demand: the four steps for one mailbox, now — each step reported as soon as it
//! is decided ([`StepTrace`]), so a console shows the trace live.

use exo_writeback_core::outcome::{OutcomeCode, OutcomeDetail};
use exo_writeback_core::provisioning::{
    Action, CycleCounts, CycleId, CycleKind, ObjectOutcome, ProvisioningLogEntry, Step, StepStatus,
    Steps,
};
use exo_writeback_store::Store;
use jiff::Timestamp;

use crate::engine::{Engine, stopped};
use crate::error::EngineError;
use crate::evaluate::{Disposition, Processed};
use crate::ports::{Directory, DirectoryError, MailboxSource};
use crate::record::{Escrow, Outcome, step};
use crate::write::Stop;

/// The result of provision on demand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionReport {
    pub identity: String,
    pub dry_run: bool,
    /// The on-demand cycle it was logged in (none for a dry run).
    pub cycle: Option<CycleId>,
    pub entry: ProvisioningLogEntry,
}

/// One of the four steps of a log entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    Import,
    Scoping,
    Matching,
    Export,
}

impl StepKind {
    pub const ALL: [StepKind; 4] = [
        StepKind::Import,
        StepKind::Scoping,
        StepKind::Matching,
        StepKind::Export,
    ];

    /// This step of `steps`.
    pub fn of(self, steps: &Steps) -> &Step {
        match self {
            StepKind::Import => &steps.import,
            StepKind::Scoping => &steps.scoping,
            StepKind::Matching => &steps.matching,
            StepKind::Export => &steps.export,
        }
    }
}

/// Told each step of a provision on demand once it is decided: import, scoping and matching
/// after the mailbox is read and evaluated (before anything is written), export once the
/// modify was sent (or not). The report's entry holds the same steps.
pub type StepTrace<'a> = &'a (dyn Fn(StepKind, &Step) + Send + Sync);

impl<S: MailboxSource, D: Directory, St: Store> Engine<S, D, St> {
    /// Turn a DN into a mailbox identity (its ExternalDirectoryObjectId, mail or UPN).
    pub(crate) async fn identity_from_dn(
        &self,
        dn: &str,
    ) -> Result<Option<String>, DirectoryError> {
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
                // A mailbox's key, or a group's (issue 17).
                let v = exo_writeback_core::mailbox::bare_cloud_id(v);
                if !v.is_empty() {
                    return Ok(Some(v.to_string()));
                }
            }
        }
        Ok(None)
    }

    /// Run the four steps for one mailbox now. `identity`: UPN or SMTP address,
    /// ExternalDirectoryObjectId, `User_<id>` (a group's `Group_<id>`), or an AD DN.
    pub async fn provision(
        &mut self,
        identity: &str,
        dry_run: bool,
    ) -> Result<ProvisionReport, EngineError> {
        self.provision_traced(identity, dry_run, &|_, _| {}).await
    }

    /// [`Engine::provision`], telling `trace` each step as soon as it is decided.
    pub async fn provision_traced(
        &mut self,
        identity: &str,
        dry_run: bool,
        trace: StepTrace<'_>,
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
            Some(exo_writeback_core::mailbox::bare_cloud_id(id).to_string())
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
            let mut outcome = Outcome::new(CycleId(0), started, Escrow::Keep);
            outcome.steps.import = step(StepStatus::Failure, why.clone());
            trace(StepKind::Import, &outcome.steps.import);
            let detail = OutcomeDetail::new(OutcomeCode::MailboxNotFound, why);
            let entry = outcome.finish(Action::Skip, Some(detail)).log;
            return Ok(ProvisionReport {
                identity: identity.to_string(),
                dry_run,
                cycle: None,
                entry,
            });
        };
        let schema = self.schema().await?;
        self.probe_read_rights(&[]).await;
        let mut p = self.evaluate(&mailbox, &schema, None).await;
        p.started = started;
        for kind in [StepKind::Import, StepKind::Scoping, StepKind::Matching] {
            trace(kind, kind.of(&p.steps));
        }
        if dry_run {
            let entry = p.dry_run(CycleId(0)).log;
            trace(StepKind::Export, &entry.steps.export);
            return Ok(ProvisionReport {
                identity: identity.to_string(),
                dry_run,
                cycle: None,
                entry,
            });
        }
        let cycle = self.store.begin_cycle(CycleKind::OnDemand, started)?;
        let mut counts = CycleCounts {
            imported: 1,
            ..CycleCounts::default()
        };
        let result = self.provision_one(cycle, p, &mut counts).await;
        let outcome = self.close(cycle, &counts, result)?;
        trace(StepKind::Export, &outcome.log.steps.export);
        Ok(ProvisionReport {
            identity: identity.to_string(),
            dry_run,
            cycle: Some(cycle),
            entry: outcome.log,
        })
    }

    /// Writes one evaluated mailbox in the on-demand `cycle`, through the one write path.
    async fn provision_one(
        &mut self,
        cycle: CycleId,
        p: Processed,
        counts: &mut CycleCounts,
    ) -> Result<ObjectOutcome, EngineError> {
        self.reconcile_intents(Some(cycle)).await?;
        let planned = matches!(&p.disposition, Disposition::Write { .. });
        match &p.disposition {
            Disposition::Skipped(_) => counts.skipped = 1,
            _ => counts.in_scope = 1,
        }
        counts.security_events = u64::from(p.security.is_some());
        counts.drift_detected = u64::from(p.drift.is_some());
        match &p.disposition {
            Disposition::Write { .. } | Disposition::Skipped(_) => {}
            Disposition::Failed(_) => counts.failed = 1,
            Disposition::InSync => counts.unchanged = 1,
            Disposition::Pinned(_) => counts.pinned = 1,
            Disposition::Drifted(_) => counts.drift_reported = 1,
        }
        let item = p.into_write(cycle);
        let mut chunk = self.write_chunk(vec![item], Vec::new()).await?;
        counts.written += chunk.written;
        counts.failed += chunk.failed;
        if let Some(stop) = chunk.stopped {
            counts.pending = u64::from(planned);
            return Err(stopped(cycle, stop));
        }
        // Not stopped: the one object has its outcome.
        chunk
            .outcomes
            .pop()
            .ok_or_else(|| stopped(cycle, Stop::Cancelled))
    }
}
