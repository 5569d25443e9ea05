//! Drift: an on-premises edit of an attribute the agent wrote.
//!
//! Microsoft's Cloud Sync has no reconciliation ("out-of-band sync correction not currently
//! supported"): an edit made in AD stays until the cloud object changes again. The agent
//! compares, for every object it evaluates, what AD holds with what it last wrote (the
//! journal). An attribute is **drifted** when
//!
//! - the journal holds a write of it by the agent (an attribute never written is not drift:
//!   the first write is an ordinary update),
//! - Exchange Online still maps to the values of that last write (the cloud did not change —
//!   a new cloud value is an ordinary update, whatever AD holds), and
//! - AD holds something else.
//!
//! Each profile chooses what happens (`[writeback] drift`): `report` (the default) logs
//! `DriftDetected` with the values the agent wrote and the values found, and leaves the
//! attribute as it is; `correct` writes the cloud value back (`DriftCorrected`, journaled, so
//! `undo` restores the on-premises edit). When the domain controller serves
//! `msDS-ReplAttributeMetaData` the log also says when and on which DC the edit was made
//! ([`ChangeOrigin`], [`parse_repl_attr_metadata`]).

use std::collections::BTreeMap;
use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::directory::AttrValue;
use crate::mapping::{Mapping, MappingOrigin};
use crate::outcome::{OutcomeCode, OutcomeDetail};
use crate::plan::ObjectPlan;
use crate::profile::Profile;
use crate::provisioning::{CycleId, JournalRecord, without_attributes};
use crate::schema::{Syntax, same_values};

/// What a profile does with an on-premises edit of an attribute the agent wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DriftMode {
    /// Log it (`DriftDetected`) and leave AD as it is.
    #[default]
    Report,
    /// Write the cloud value back (`DriftCorrected`, journaled, undoable).
    Correct,
}

impl DriftMode {
    pub fn as_str(self) -> &'static str {
        match self {
            DriftMode::Report => "report",
            DriftMode::Correct => "correct",
        }
    }
}

/// The `drift` key of `[writeback]`: one mode for every profile (`drift = "correct"`), or one
/// per profile (`drift = { cloud-managed = "correct", hybrid = "report" }`; `custom` names the
/// custom mappings; a profile not named reports).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DriftSetting {
    All(DriftMode),
    PerProfile(BTreeMap<String, DriftMode>),
}

impl Default for DriftSetting {
    fn default() -> Self {
        DriftSetting::All(DriftMode::Report)
    }
}

/// The resolved drift modes: one per profile and one for the custom mappings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DriftPolicy {
    profiles: BTreeMap<Profile, DriftMode>,
    custom: DriftMode,
}

impl DriftSetting {
    /// Checks the profile names. Error: the problem, for `writeback.drift`.
    pub fn resolve(&self) -> Result<DriftPolicy, String> {
        match self {
            DriftSetting::All(mode) => Ok(DriftPolicy {
                profiles: Profile::ALL.iter().map(|p| (*p, *mode)).collect(),
                custom: *mode,
            }),
            DriftSetting::PerProfile(map) => {
                let mut policy = DriftPolicy::default();
                for (name, mode) in map {
                    if name == "custom" {
                        policy.custom = *mode;
                    } else if let Some(p) = Profile::from_name(name) {
                        policy.profiles.insert(p, *mode);
                    } else {
                        let known = Profile::ALL
                            .iter()
                            .map(|p| p.name())
                            .chain(["custom"])
                            .collect::<Vec<_>>()
                            .join(", ");
                        return Err(format!("{name:?} is not a profile (known: {known})"));
                    }
                }
                Ok(policy)
            }
        }
    }
}

impl DriftPolicy {
    pub fn mode_of(&self, origin: MappingOrigin) -> DriftMode {
        match origin {
            MappingOrigin::Profile(p) => self.profiles.get(&p).copied().unwrap_or_default(),
            MappingOrigin::Custom => self.custom,
        }
    }

    /// The mode of the mapping writing `attribute` (report when none does).
    pub fn mode_for(&self, mappings: &[Mapping], attribute: &str) -> DriftMode {
        mappings
            .iter()
            .find(|m| m.target.eq_ignore_ascii_case(attribute))
            .map(|m| self.mode_of(m.origin))
            .unwrap_or_default()
    }

    /// Each profile's mode, as `status` shows them: `cloud-managed report, hybrid report, …`.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .profiles
            .iter()
            .map(|(p, m)| format!("{} {}", p.name(), m.as_str()))
            .collect();
        parts.push(format!("custom {}", self.custom.as_str()));
        parts.join(", ")
    }
}

/// When and where AD says an attribute was last changed (`msDS-ReplAttributeMetaData`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeOrigin {
    pub attribute: String,
    /// `ftimeLastOriginatingChange`.
    pub time: Option<Timestamp>,
    /// `pszLastOriginatingDsaDN`: the NTDS Settings object of the DC the edit was made on.
    pub dsa_dn: Option<String>,
    /// `dwVersion`: originating writes of the attribute so far.
    pub version: Option<u64>,
}

impl fmt::Display for ChangeOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.time {
            Some(t) => write!(f, "changed at {t}")?,
            None => f.write_str("changed")?,
        }
        if let Some(dn) = &self.dsa_dn {
            write!(f, " on {}", dc_of(dn))?;
        }
        Ok(())
    }
}

/// `CN=NTDS Settings,CN=DC1,CN=Servers,…` → `DC1` (the DSA DN as given when it has no server).
fn dc_of(dsa_dn: &str) -> &str {
    let mut parts = dsa_dn.split(',');
    match (parts.next(), parts.next()) {
        (Some(first), Some(server)) if first.eq_ignore_ascii_case("CN=NTDS Settings") => {
            server.strip_prefix("CN=").unwrap_or(server)
        }
        _ => dsa_dn,
    }
}

/// One value of `msDS-ReplAttributeMetaData` (MS-ADTS: an XML `DS_REPL_ATTR_META_DATA`
/// element per attribute) read into a [`ChangeOrigin`]; `None` for a value that is not one.
pub fn parse_repl_attr_metadata(xml: &str) -> Option<ChangeOrigin> {
    fn field<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        let start = xml.find(&open)? + open.len();
        let end = start + xml[start..].find(&close)?;
        Some(xml[start..end].trim())
    }
    let attribute = field(xml, "pszAttributeName")?.to_string();
    if attribute.is_empty() {
        return None;
    }
    Some(ChangeOrigin {
        attribute,
        time: field(xml, "ftimeLastOriginatingChange").and_then(|t| t.parse().ok()),
        dsa_dn: field(xml, "pszLastOriginatingDsaDN")
            .filter(|d| !d.is_empty())
            .map(unescape_xml),
        version: field(xml, "dwVersion").and_then(|v| v.parse().ok()),
    })
}

fn unescape_xml(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// One drifted attribute of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    pub attribute: String,
    /// What the agent last wrote (and Exchange Online still maps to).
    pub written: Vec<AttrValue>,
    pub written_by: CycleId,
    pub written_at: Timestamp,
    /// What AD holds now.
    pub found: Vec<AttrValue>,
    pub mode: DriftMode,
    pub origin: Option<ChangeOrigin>,
}

impl Drift {
    /// `extensionAttribute1: "cloud" → "edited" (written by cycle 3 at …; changed at … on DC1)`.
    pub fn describe(&self) -> String {
        let origin = self
            .origin
            .as_ref()
            .map(|o| format!("; {o}"))
            .unwrap_or_else(|| "; the DC does not say when or where".into());
        format!(
            "{}: {} → {} (written by cycle {} at {}{origin})",
            self.attribute,
            show(&self.written),
            show(&self.found),
            self.written_by,
            self.written_at
        )
    }
}

fn show(values: &[AttrValue]) -> String {
    if values.is_empty() {
        return "(none)".into();
    }
    values
        .iter()
        .map(|v| match v {
            AttrValue::Text(t) => format!("{t:?}"),
            AttrValue::Bytes(b) => format!("<{} bytes>", b.len()),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The drifted attributes among the plan's changes. `journal`: the object's journal, newest
/// first; `mode`: the mode of the attribute's profile; `syntax`: the attribute's syntax, to
/// compare values as AD does.
pub fn detect_drift<'a>(
    plan: &ObjectPlan,
    journal: &[JournalRecord],
    syntax: impl Fn(&str) -> Option<&'a Syntax>,
    mode: impl Fn(&str) -> DriftMode,
) -> Vec<Drift> {
    let mut out = Vec::new();
    for change in &plan.changes {
        let Some(last) = journal
            .iter()
            .find(|r| r.attribute.eq_ignore_ascii_case(&change.attribute))
        else {
            continue;
        };
        let s = syntax(&change.attribute);
        if same_values(s, &change.new, &last.new) && !same_values(s, &change.old, &last.new) {
            out.push(Drift {
                attribute: change.attribute.clone(),
                written: last.new.clone(),
                written_by: last.cycle,
                written_at: last.time,
                found: change.old.clone(),
                mode: mode(&change.attribute),
                origin: None,
            });
        }
    }
    out
}

/// What became of an object's drift: the attributes left as they are (report mode) were
/// taken out of the plan; the detail for its log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriftOutcome {
    /// `DriftDetected` when an attribute is left as it is, else `DriftCorrected`.
    pub detail: OutcomeDetail,
    pub reported: usize,
    pub corrected: usize,
}

/// Applies the modes: reported attributes leave the plan (its modify, changes and threshold
/// share), corrected ones stay. `None` when nothing drifted.
pub fn apply_drift(plan: &mut ObjectPlan, drifts: &[Drift]) -> Option<DriftOutcome> {
    if drifts.is_empty() {
        return None;
    }
    let (reported, corrected): (Vec<&Drift>, Vec<&Drift>) =
        drifts.iter().partition(|d| d.mode == DriftMode::Report);
    let is_reported = |a: &str| reported.iter().any(|d| d.attribute.eq_ignore_ascii_case(a));
    if !reported.is_empty() {
        plan.changes.retain(|c| !is_reported(&c.attribute));
        without_attributes(plan, is_reported);
    }
    let list = |ds: &[&Drift]| {
        ds.iter()
            .map(|d| d.describe())
            .collect::<Vec<_>>()
            .join("; ")
    };
    let detail = if reported.is_empty() {
        OutcomeDetail::new(
            OutcomeCode::DriftCorrected,
            format!(
                "on-premises edit corrected, the cloud value written back: {}",
                list(&corrected)
            ),
        )
    } else {
        let also = if corrected.is_empty() {
            String::new()
        } else {
            format!("; corrected: {}", list(&corrected))
        };
        OutcomeDetail::new(
            OutcomeCode::DriftDetected,
            format!(
                "on-premises edit left as it is (drift = \"report\"): {}{also}",
                list(&reported)
            ),
        )
    };
    Some(DriftOutcome {
        detail,
        reported: reported.len(),
        corrected: corrected.len(),
    })
}

#[cfg(test)]
#[path = "drift_tests.rs"]
mod tests;
