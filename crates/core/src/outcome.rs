//! The outcome codes that provisioning logs, `provision` and `preview` show: what happened to
//! one object, why, and what an administrator should do about it.
//!
//! Every skip or failure produced by the planning core ([`crate::scope::SkipReason`],
//! [`crate::matching::MatchDecision`], [`crate::plan::PlanFailure`]) converts into an
//! [`OutcomeDetail`] with [`OutcomeCode`], a reason text and a recommended action.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use crate::provisioning::LogStatus;
use crate::provisioning::Reason;

/// A code naming what happened to one object. `as_str` is the stable text in logs and JSON
/// (serialized as that text; a text no version ever wrote does not deserialize). Codes order
/// by that text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutcomeCode {
    /// The mailbox is not in the scope of any enabled profile or scoping filter.
    NotInScope,
    /// The matched AD object lies outside the configured container scope.
    OutsideContainerScope,
    /// No AD object matched the mailbox.
    TargetNotFound,
    /// More than one AD object matched the mailbox.
    DuplicateTargetEntries,
    /// A security event: an AD object holds the mailbox's `msDS-ExternalDirectoryObjectId`
    /// key (which every user may write on their own account) without being the object of the
    /// mailbox's immutable anchor. The key is not followed.
    SpoofedMatchKey,
    /// The mailbox has no ImmutableId and the object holding its
    /// `msDS-ExternalDirectoryObjectId` key (writable by every user on their own account) has
    /// nothing the user cannot write that agrees with the mailbox (UPN, an SMTP address): it
    /// is not written.
    UncorroboratedMatchKey,
    /// The cloud's EmailAddresses cannot be written (no or several primaries, bad syntax).
    InvalidProxyAddresses,
    /// A value does not fit the AD schema (missing attribute, syntax, size, single-valued).
    SchemaConstraint,
    /// An SMTP address to be added is held by another AD object.
    ProxyAddressConflict,
    /// A mapping expression failed to evaluate.
    ExpressionError,
    /// A mapping targets an attribute that may not be written (deny-list or not allowed).
    AttributeNotAllowed,
    /// The object was written.
    Updated,
    /// The object already held every mapped value: nothing written.
    AlreadyInSync,
    /// An on-premises edit of an attribute the agent wrote was overwritten with the cloud value
    /// (`drift = "correct"`; journaled, undoable).
    DriftCorrected,
    /// An on-premises edit of an attribute the agent wrote, while Exchange Online still holds
    /// the value the agent wrote: left as it is (`drift = "report"`, the default).
    DriftDetected,
    /// The recipient type changed and the object's `targetAddress` (never written by the
    /// agent) is missing or not the mailbox's `*.mail.onmicrosoft.com` routing address.
    TargetAddressUnexpected,
    /// A member of a group's cloud membership resolves to no AD object (or to several, or only
    /// through a key nothing corroborates): it is not written, never guessed; the rest of the
    /// group's change is (`write_membership = true`, `docs/groups-and-contacts.md`).
    MemberNotResolved,
    /// The cycle would remove values from more objects than the threshold allows.
    ThresholdExceeded,
    /// The domain controller refused the modification.
    LdapError,
    /// Exchange Online sent a mailbox record that cannot be read safely (a property of the
    /// wrong JSON type, bytes that are not UTF-8): the record is skipped, nothing written.
    MalformedMailboxRecord,
    /// Exchange Online answered a result page but reported errors with it
    /// (`@adminapi.errors`): the page's records were processed, the listing stopped there.
    ServiceReportedErrors,
    /// A change held by the threshold was approved, but the AD object no longer holds the values
    /// the change was planned from: it was not written (approving it would overwrite a newer
    /// on-premises change).
    ChangedSinceHeld,
    /// A change held by the change threshold, waiting for `exo-writeback approve` or
    /// `reject` (status `held` in the log, `Held` in `preview`).
    Held,
    /// Provision on demand: Exchange Online has no such mailbox, or the AD object named has no
    /// mailbox identity.
    MailboxNotFound,
    /// The attributes the cycle would change were restored by `exo-writeback undo` and
    /// Exchange Online still holds the values that were undone: left as they are.
    PinnedByUndo,
    /// The change was refused with `exo-writeback reject` and Exchange Online still holds the
    /// values it would have written: not written.
    Rejected,
    /// The agent's own state database could not be read for this object (e.g. its pins):
    /// nothing was written, the object is retried from escrow.
    StateError,
}

impl OutcomeCode {
    pub const ALL: [OutcomeCode; 27] = [
        OutcomeCode::NotInScope,
        OutcomeCode::OutsideContainerScope,
        OutcomeCode::TargetNotFound,
        OutcomeCode::DuplicateTargetEntries,
        OutcomeCode::SpoofedMatchKey,
        OutcomeCode::UncorroboratedMatchKey,
        OutcomeCode::InvalidProxyAddresses,
        OutcomeCode::SchemaConstraint,
        OutcomeCode::ProxyAddressConflict,
        OutcomeCode::ExpressionError,
        OutcomeCode::AttributeNotAllowed,
        OutcomeCode::Updated,
        OutcomeCode::AlreadyInSync,
        OutcomeCode::DriftCorrected,
        OutcomeCode::DriftDetected,
        OutcomeCode::TargetAddressUnexpected,
        OutcomeCode::ThresholdExceeded,
        OutcomeCode::LdapError,
        OutcomeCode::MalformedMailboxRecord,
        OutcomeCode::ServiceReportedErrors,
        OutcomeCode::ChangedSinceHeld,
        OutcomeCode::Held,
        OutcomeCode::MailboxNotFound,
        OutcomeCode::PinnedByUndo,
        OutcomeCode::Rejected,
        OutcomeCode::StateError,
        OutcomeCode::MemberNotResolved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeCode::NotInScope => "NotInScope",
            OutcomeCode::OutsideContainerScope => "OutsideContainerScope",
            OutcomeCode::TargetNotFound => "TargetNotFound",
            OutcomeCode::DuplicateTargetEntries => "DuplicateTargetEntries",
            OutcomeCode::SpoofedMatchKey => "SpoofedMatchKey",
            OutcomeCode::UncorroboratedMatchKey => "UncorroboratedMatchKey",
            OutcomeCode::InvalidProxyAddresses => "InvalidProxyAddresses",
            OutcomeCode::SchemaConstraint => "SchemaConstraint",
            OutcomeCode::ProxyAddressConflict => "ProxyAddressConflict",
            OutcomeCode::ExpressionError => "ExpressionError",
            OutcomeCode::AttributeNotAllowed => "AttributeNotAllowed",
            OutcomeCode::Updated => "Updated",
            OutcomeCode::AlreadyInSync => "AlreadyInSync",
            OutcomeCode::DriftCorrected => "DriftCorrected",
            OutcomeCode::DriftDetected => "DriftDetected",
            OutcomeCode::TargetAddressUnexpected => "TargetAddressUnexpected",
            OutcomeCode::MemberNotResolved => "MemberNotResolved",
            OutcomeCode::ThresholdExceeded => "ThresholdExceeded",
            OutcomeCode::LdapError => "LdapError",
            OutcomeCode::MalformedMailboxRecord => "MalformedMailboxRecord",
            OutcomeCode::ServiceReportedErrors => "ServiceReportedErrors",
            OutcomeCode::ChangedSinceHeld => "ChangedSinceHeld",
            OutcomeCode::Held => "Held",
            OutcomeCode::MailboxNotFound => "MailboxNotFound",
            OutcomeCode::PinnedByUndo => "PinnedByUndo",
            OutcomeCode::Rejected => "Rejected",
            OutcomeCode::StateError => "StateError",
        }
    }

    /// Parse the text written by [`OutcomeCode::as_str`].
    pub fn parse(text: &str) -> Option<OutcomeCode> {
        OutcomeCode::ALL.into_iter().find(|c| c.as_str() == text)
    }

    /// The log status an outcome of this code carries.
    pub fn status(self) -> LogStatus {
        match self {
            OutcomeCode::NotInScope
            | OutcomeCode::OutsideContainerScope
            | OutcomeCode::TargetNotFound
            | OutcomeCode::PinnedByUndo
            | OutcomeCode::Rejected => LogStatus::Skipped,
            OutcomeCode::Updated | OutcomeCode::AlreadyInSync => LogStatus::Success,
            OutcomeCode::Held => LogStatus::Held,
            OutcomeCode::DriftCorrected
            | OutcomeCode::DriftDetected
            | OutcomeCode::ThresholdExceeded
            | OutcomeCode::SpoofedMatchKey
            | OutcomeCode::TargetAddressUnexpected
            | OutcomeCode::MemberNotResolved => LogStatus::Warning,
            OutcomeCode::DuplicateTargetEntries
            | OutcomeCode::UncorroboratedMatchKey
            | OutcomeCode::InvalidProxyAddresses
            | OutcomeCode::SchemaConstraint
            | OutcomeCode::ProxyAddressConflict
            | OutcomeCode::ExpressionError
            | OutcomeCode::AttributeNotAllowed
            | OutcomeCode::LdapError
            | OutcomeCode::MalformedMailboxRecord
            | OutcomeCode::ServiceReportedErrors
            | OutcomeCode::ChangedSinceHeld
            | OutcomeCode::MailboxNotFound
            | OutcomeCode::StateError => LogStatus::Failure,
        }
    }

    /// What an administrator should do about an outcome of this code.
    pub fn recommended_action(self) -> &'static str {
        match self {
            OutcomeCode::NotInScope => {
                "Nothing, if the mailbox should not be written back. Otherwise make it \
                 cloud-managed (Set-Mailbox -IsExchangeCloudManaged $true), check that it is \
                 directory-synced, or adjust the scoping filters."
            }
            OutcomeCode::OutsideContainerScope => {
                "Move the AD object into one of the configured containers, or add its \
                 container to the container scope."
            }
            OutcomeCode::TargetNotFound => {
                "Check that the user is synced from this forest: msDS-ExternalDirectoryObjectId, \
                 mS-DS-ConsistencyGuid or objectGUID must identify the AD object, and the \
                 agent's account must be able to read it."
            }
            OutcomeCode::DuplicateTargetEntries => {
                "Make the matching attribute unique: clear it on the AD objects listed that do \
                 not belong to this mailbox."
            }
            OutcomeCode::SpoofedMatchKey => {
                "Investigate the AD object(s) named as holding the key: find who wrote \
                 msDS-ExternalDirectoryObjectId on them (repadmin /showobjmeta <DC> <DN>, or \
                 Get-ADReplicationAttributeMetadata, gives when and on which DC) and clear it \
                 (Set-ADUser <DN> -Clear msDS-ExternalDirectoryObjectId). The agent matched by \
                 the immutable anchor and never follows this key. To stop users writing it, \
                 deny SELF Write Property on it (docs/windows-ad.md)."
            }
            OutcomeCode::UncorroboratedMatchKey => {
                "Check that the AD object named is this mailbox's user. If it is, make their \
                 userPrincipalName agree with the mailbox's (Set-ADUser <DN> \
                 -UserPrincipalName <the mailbox's UPN>), or give the object one of the \
                 mailbox's SMTP addresses, or set the mailbox's ImmutableId \
                 (mS-DS-ConsistencyGuid / objectGUID). If it is not, clear the key it wrote \
                 (Set-ADUser <DN> -Clear msDS-ExternalDirectoryObjectId) and find out who wrote \
                 it (repadmin /showobjmeta <DC> <DN>)."
            }
            OutcomeCode::InvalidProxyAddresses => {
                "Fix the mailbox's EmailAddresses in Exchange Online so that it has exactly one \
                 primary SMTP: address and every SMTP address is valid."
            }
            OutcomeCode::SchemaConstraint => {
                "Shorten or correct the value in Exchange Online, or extend the AD schema \
                 (run Exchange schema preparation) so the attribute exists with the needed \
                 syntax; run `exo-writeback check`."
            }
            OutcomeCode::ProxyAddressConflict => {
                "Remove the address from the other AD object named, or from this mailbox in \
                 Exchange Online; an address must belong to one recipient only."
            }
            OutcomeCode::ExpressionError => {
                "Test the mapping with `exo-writeback expr` against this mailbox's values and \
                 correct the expression."
            }
            OutcomeCode::AttributeNotAllowed => {
                "Remove the mapping: the attribute is on the deny-list or not written by any \
                 enabled profile."
            }
            OutcomeCode::Updated | OutcomeCode::AlreadyInSync => "None.",
            OutcomeCode::DriftCorrected => {
                "Stop editing this attribute on-premises: Exchange Online is its source of \
                 authority and the agent restores the cloud value. `exo-writeback undo` \
                 restores the on-premises edit."
            }
            OutcomeCode::DriftDetected => {
                "Find who edited the attribute on-premises (the entry names the DC and time \
                 when AD reports them; repadmin /showobjmeta <DC> <DN> otherwise). Make the \
                 change in Exchange Online if it should stay, or set drift = \"correct\" for \
                 the profile to have the agent write the cloud value back."
            }
            OutcomeCode::TargetAddressUnexpected => {
                "Check the remote mailbox's routing on the Exchange server: Get-RemoteMailbox \
                 <identity> | Format-List RemoteRoutingAddress, then Set-RemoteMailbox \
                 <identity> -RemoteRoutingAddress <alias>@<tenant>.mail.onmicrosoft.com with an \
                 address the cloud mailbox has. The agent wrote the recipient type and never \
                 writes targetAddress."
            }
            OutcomeCode::MemberNotResolved => {
                "Make the member resolvable: let the agent match it first (enable the profile \
                 of its kind — mailboxes, groups or contacts — so its join is stored), or give \
                 the AD object named the member's primary SMTP address, or clear \
                 msDS-ExternalDirectoryObjectId on the objects that wrongly hold its key. Until \
                 then the member is left out of the group's member attribute; nothing is guessed."
            }
            OutcomeCode::ThresholdExceeded => {
                "Review the held changes with `exo-writeback preview`, then run \
                 `exo-writeback approve <cycle>` or `exo-writeback reject <cycle>`, or raise \
                 `threshold`."
            }
            OutcomeCode::LdapError => {
                "Read the LDAP result code and message; grant the agent's account the missing \
                 right on the object or fix the value."
            }
            OutcomeCode::MalformedMailboxRecord => {
                "Look at the mailbox in Exchange Online (Get-Mailbox <identity> | Format-List \
                 <property>) and correct the property named. Nothing was written for it; the \
                 record is read again when the mailbox changes, and retried from escrow \
                 meanwhile."
            }
            OutcomeCode::ServiceReportedErrors => {
                "Read the service's text: it usually names the mailbox or object Exchange \
                 Online could not read. The mailboxes read before the error were written; the \
                 watermark stays, so the next cycle reads the rest again. If the error repeats, \
                 run Get-Mailbox for the object named in an Exchange Online PowerShell session \
                 and correct it there."
            }
            OutcomeCode::ChangedSinceHeld => {
                "Nothing was written: the AD object changed after the cycle held its changes. \
                 The object is retried from escrow; the next cycle plans it again from the \
                 current values (review with `exo-writeback preview` if the threshold holds it \
                 again)."
            }
            OutcomeCode::Held => {
                "Review the held changes with `exo-writeback preview`, then run \
                 `exo-writeback approve <cycle>` to write them or `exo-writeback reject <cycle>` \
                 to refuse them."
            }
            OutcomeCode::MailboxNotFound => {
                "Check the identity: a UPN or SMTP address, an ExternalDirectoryObjectId, \
                 User_<id>, or the DN of a synced AD user."
            }
            OutcomeCode::PinnedByUndo => {
                "Nothing, if the undone values should stay. Change the value in Exchange Online \
                 (the new value is written), or run `exo-writeback unpin --object <identity>` \
                 to write the current Exchange Online value again."
            }
            OutcomeCode::Rejected => {
                "Nothing, if the change should stay refused. Change the value in Exchange Online \
                 (the new value is written), or run `exo-writeback unpin --object <identity>` \
                 to write the refused value after all."
            }
            OutcomeCode::StateError => {
                "Check the state directory (disk space, permissions, another process holding \
                 the database); the object is retried from escrow."
            }
        }
    }
}

impl Ord for OutcomeCode {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for OutcomeCode {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A map keyed by codes is looked up by their text (codes order and compare as their text).
impl Borrow<str> for OutcomeCode {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq<str> for OutcomeCode {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for OutcomeCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for OutcomeCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for OutcomeCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        OutcomeCode::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown outcome code {text:?}")))
    }
}

impl fmt::Display for OutcomeCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a provisioning log shows for a skip or an error: `{code, reason, recommended action}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeDetail {
    pub code: OutcomeCode,
    /// What happened, naming the object, attribute or condition involved.
    pub reason: String,
    pub recommended_action: String,
}

impl OutcomeDetail {
    pub fn new(code: OutcomeCode, reason: impl Into<String>) -> Self {
        OutcomeDetail {
            code,
            reason: reason.into(),
            recommended_action: code.recommended_action().to_string(),
        }
    }
    pub fn status(&self) -> LogStatus {
        self.code.status()
    }
}

impl fmt::Display for OutcomeDetail {
    /// `Code: reason`, e.g. `NotInScope: IsExchangeCloudManaged is False`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.reason)
    }
}

impl From<OutcomeDetail> for Reason {
    fn from(d: OutcomeDetail) -> Reason {
        Reason {
            code: d.code,
            message: d.reason,
            recommended_action: d.recommended_action,
        }
    }
}

impl From<Reason> for OutcomeDetail {
    fn from(r: Reason) -> OutcomeDetail {
        OutcomeDetail {
            code: r.code,
            reason: r.message,
            recommended_action: r.recommended_action,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_all_have_actions() {
        for code in OutcomeCode::ALL {
            assert_eq!(OutcomeCode::parse(code.as_str()), Some(code));
            assert!(!code.recommended_action().is_empty());
        }
        assert_eq!(OutcomeCode::parse("notinscope"), None);
    }

    #[test]
    fn codes_are_stored_as_their_text_and_order_by_it() {
        for code in OutcomeCode::ALL {
            let json = serde_json::to_string(&code).expect("serialize");
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            let back: OutcomeCode = serde_json::from_str(&json).expect("deserialize");
            assert_eq!(back, code);
        }
        let err = serde_json::from_str::<OutcomeCode>("\"Unknown\"").unwrap_err();
        assert!(err.to_string().contains("Unknown"), "{err}");
        let mut sorted = OutcomeCode::ALL.to_vec();
        sorted.sort();
        let texts: Vec<&str> = sorted.iter().map(|c| c.as_str()).collect();
        let mut by_text = texts.clone();
        by_text.sort_unstable();
        assert_eq!(texts, by_text);
    }

    #[test]
    fn detail_displays_code_and_reason() {
        let d = OutcomeDetail::new(OutcomeCode::NotInScope, "IsExchangeCloudManaged is False");
        assert_eq!(d.to_string(), "NotInScope: IsExchangeCloudManaged is False");
        assert_eq!(d.status(), LogStatus::Skipped);
        assert_eq!(OutcomeCode::SchemaConstraint.status(), LogStatus::Failure);
    }
}
