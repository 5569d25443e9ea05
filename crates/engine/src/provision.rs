//! Provision on demand: the four steps for one mailbox, now.

use exo_writeback_core::outcome::{OutcomeCode, OutcomeDetail};
use exo_writeback_core::provisioning::{
    Action, CycleCounts, CycleId, CycleKind, CycleStatus, LogEntryId, LogStatus,
    ProvisioningLogEntry, Reason, SourceIdentity, Step, StepStatus, Steps, TargetIdentity,
};
use exo_writeback_store::WriteIntent;
use exo_writeback_store::prelude::*;
use jiff::Timestamp;
use uuid::Uuid;

use crate::ports::{Directory, DirectoryError, MailboxSource};

use crate::engine::Engine;
use crate::error::EngineError;
use crate::evaluate::Disposition;
use crate::record::step;
use crate::write::WriteResult;

/// The result of provision on demand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionReport {
    pub identity: String,
    pub dry_run: bool,
    /// The on-demand cycle it was logged in (none for a dry run).
    pub cycle: Option<CycleId>,
    pub entry: ProvisioningLogEntry,
}

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
                reason: Some(Reason::from(OutcomeDetail::new(
                    OutcomeCode::MailboxNotFound,
                    why.clone(),
                ))),
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
}
