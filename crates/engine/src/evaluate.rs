//! One object: import, scope, match, plan and the address guard (writes nothing).

use exo_writeback_core::mailbox::Mailbox;
use exo_writeback_core::outcome::OutcomeDetail;
use exo_writeback_core::plan::{ObjectPlan, PlanInput, check_address_conflicts, plan_object};
use exo_writeback_core::provisioning::{
    JoinUpdate, LogStatus, SourceIdentity, Step, StepStatus, Steps, TargetIdentity,
};
use exo_writeback_core::schema::Schema;
use exo_writeback_core::scope::{check_container_scope, evaluate_scope};
use exo_writeback_store::prelude::*;
use jiff::Timestamp;
use uuid::Uuid;

use crate::ports::{Directory, MailboxSource};

use crate::engine::Engine;
use crate::record::ldap_failure;
use crate::record::step;

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

pub(crate) fn source_identity(mailbox: &Mailbox) -> SourceIdentity {
    SourceIdentity {
        external_directory_object_id: mailbox.external_directory_object_id.clone(),
        primary_smtp_address: mailbox.primary_smtp_address.clone(),
    }
}

impl<S: MailboxSource, D: Directory, St: Store> Engine<S, D, St> {
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
}
