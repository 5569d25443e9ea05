//! Pins: attributes the agent leaves alone because an administrator said so — by undoing the
//! change that wrote them (`exo-writeback undo`) or by rejecting a held change
//! (`exo-writeback reject`).
//!
//! Exchange Online still holds the value that was undone or rejected, so without a pin the
//! next cycle would plan and write it again. A pin records that cloud value (as the mapping
//! gives it): while Exchange Online still maps to it, the attribute is taken out of the
//! object's plan; once it maps to anything else, the value changed again in the cloud, the pin
//! releases itself and the new value is written. `exo-writeback unpin` releases pins by hand.
//!
//! [`check_pins`] is the pure decision over one object's plan; the engine stores the result
//! with the object's outcome (one transaction), so a pin never outlives or precedes the log
//! entry that says why.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::directory::{AttrValue, DirectoryObject, ModOp};
use crate::plan::ObjectPlan;
use crate::schema::{Syntax, same_values};

use super::{CycleId, attr_values_serde};

/// Who set a pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PinOrigin {
    /// `exo-writeback undo` restored the attribute's previous value.
    Undo,
    /// `exo-writeback reject` refused the change a held cycle planned.
    Reject,
}

impl PinOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            PinOrigin::Undo => "undo",
            PinOrigin::Reject => "reject",
        }
    }
}

impl fmt::Display for PinOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One pinned attribute of one AD object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    pub object_guid: Uuid,
    /// The object's DN when pinned (for display).
    pub dn: String,
    /// The mailbox, when known (for display and `unpin --object`).
    pub cloud_id: Option<String>,
    pub primary_smtp_address: Option<String>,
    pub attribute: String,
    /// The values Exchange Online maps to, which the pin holds back: the values the undone
    /// change wrote, or the rejected change would have written.
    #[serde(with = "attr_values_serde")]
    pub cloud_value: Vec<AttrValue>,
    pub origin: PinOrigin,
    /// The undo or reject cycle that set it.
    pub cycle: CycleId,
    pub at: Timestamp,
    /// Who ran the command.
    pub by: String,
    /// The reason given with `reject --reason`.
    pub note: Option<String>,
}

impl Pin {
    pub fn key(&self) -> PinKey {
        PinKey {
            object_guid: self.object_guid,
            attribute: self.attribute.clone(),
        }
    }

    /// `extensionAttribute3 (pinned by undo, cycle 12, by alice)`.
    pub fn describe(&self) -> String {
        let note = self
            .note
            .as_deref()
            .map(|n| format!(": \"{n}\""))
            .unwrap_or_default();
        match self.origin {
            PinOrigin::Undo => format!(
                "{} (undone by cycle {} at {}, by {}{note})",
                self.attribute, self.cycle, self.at, self.by
            ),
            PinOrigin::Reject => format!(
                "{} (its change was rejected by {} at {}, cycle {}{note})",
                self.attribute, self.by, self.at, self.cycle
            ),
        }
    }
}

/// A pin's identity: one attribute of one object (attribute names compare case-insensitively).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinKey {
    pub object_guid: Uuid,
    pub attribute: String,
}

/// What an object's outcome does to pins, stored in its transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinUpdate {
    /// Pins to set (replacing a pin of the same attribute).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set: Vec<Pin>,
    /// Pins to release.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub release: Vec<PinKey>,
}

impl PinUpdate {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.release.is_empty()
    }
}

/// How many attributes on how many objects (pins set, released or in place).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinCount {
    pub attributes: u64,
    pub objects: u64,
}

/// What [`check_pins`] decided for one object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinCheck {
    /// Pins that still hold: their attributes were taken out of the plan (or needed nothing).
    pub kept: Vec<Pin>,
    /// Pins whose cloud value changed: released; their attributes are planned as usual.
    pub released: Vec<Pin>,
}

impl PinCheck {
    /// The pins taken out of the plan: kept pins whose attribute the plan wanted to change.
    pub fn update(&self) -> PinUpdate {
        PinUpdate {
            set: Vec::new(),
            release: self.released.iter().map(Pin::key).collect(),
        }
    }
}

/// Applies an object's pins to its plan. A pin whose attribute the plan would change to the
/// pinned cloud value is kept and the attribute taken out of the plan (its modify, its change,
/// its share of the threshold count); a pin whose attribute would change to anything else —
/// or, with no change planned, whose object does not hold the pinned value — is released:
/// Exchange Online's value changed since the undo or the rejection. `syntax` gives an
/// attribute's syntax for comparing values as AD does.
pub fn check_pins<'a>(
    plan: &mut ObjectPlan,
    pins: Vec<Pin>,
    current: &DirectoryObject,
    syntax: impl Fn(&str) -> Option<&'a Syntax>,
) -> PinCheck {
    let mut check = PinCheck::default();
    for pin in pins {
        let planned = plan
            .changes
            .iter()
            .position(|c| c.attribute.eq_ignore_ascii_case(&pin.attribute));
        let s = syntax(&pin.attribute);
        match planned {
            Some(i) if same_values(s, &plan.changes[i].new, &pin.cloud_value) => {
                plan.changes.remove(i);
                check.kept.push(pin);
            }
            Some(_) => check.released.push(pin),
            None if same_values(s, current.attributes.get(&pin.attribute), &pin.cloud_value) => {
                check.kept.push(pin)
            }
            None => check.released.push(pin),
        }
    }
    if !check.kept.is_empty() {
        let kept = &check.kept;
        without_attributes(plan, |a| {
            kept.iter().any(|p| p.attribute.eq_ignore_ascii_case(a))
        });
    }
    check
}

/// Takes the attributes `pinned` names out of the plan's modify (pins, or drift left as it is),
/// and counts again whether it removes values and which addresses it adds. The plan's
/// `changes` are the caller's to trim.
pub(crate) fn without_attributes(plan: &mut ObjectPlan, pinned: impl Fn(&str) -> bool) {
    if let Some(modify) = &mut plan.modify {
        modify.changes.retain(|c| !pinned(&c.attribute));
        if modify.changes.is_empty() {
            plan.modify = None;
        }
    }
    if pinned("proxyAddresses") {
        plan.added_smtp_addresses.clear();
    }
    plan.removes_values = plan.modify.as_ref().is_some_and(|m| {
        m.changes.iter().any(|c| {
            c.op == ModOp::Delete
                && (c.values.is_empty()
                    || c.values.iter().any(|d| {
                        !m.changes.iter().any(|a| {
                            a.op == ModOp::Add
                                && a.attribute.eq_ignore_ascii_case(&c.attribute)
                                && a.values.iter().any(|v| same_text(v, d))
                        })
                    }))
        })
    });
}

/// AD's equality for a value deleted and added again (text case-insensitively, bytes exactly):
/// a case-only change is not a removal.
fn same_text(a: &AttrValue, b: &AttrValue) -> bool {
    match (a.as_text(), b.as_text()) {
        (Some(x), Some(y)) => x.to_lowercase() == y.to_lowercase(),
        _ => a.as_bytes() == b.as_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::{AttrChange, Attributes, ObjectModify};
    use crate::plan::PropertyChange;

    fn text(v: &str) -> AttrValue {
        AttrValue::Text(v.into())
    }

    fn pin(attribute: &str, value: &[&str]) -> Pin {
        Pin {
            object_guid: Uuid::nil(),
            dn: "CN=a,DC=x".into(),
            cloud_id: None,
            primary_smtp_address: None,
            attribute: attribute.into(),
            cloud_value: value.iter().map(|v| text(v)).collect(),
            origin: PinOrigin::Undo,
            cycle: CycleId(7),
            at: "2026-01-01T00:00:00Z".parse().expect("ts"),
            by: "alice".into(),
            note: None,
        }
    }

    /// A plan replacing extensionAttribute3 (old → three) and removing one address.
    fn plan() -> (ObjectPlan, DirectoryObject) {
        let mut attrs = Attributes::new();
        attrs.insert("extensionAttribute3", vec![text("old")]);
        attrs.insert(
            "proxyAddresses",
            vec![text("SMTP:a@x"), text("smtp:stale@x")],
        );
        let current = DirectoryObject {
            dn: "CN=a,DC=x".into(),
            object_guid: Uuid::nil(),
            attributes: attrs,
        };
        let plan = ObjectPlan {
            dn: "CN=a,DC=x".into(),
            modify: Some(ObjectModify {
                dn: "CN=a,DC=x".into(),
                changes: vec![
                    AttrChange {
                        op: ModOp::Replace,
                        attribute: "extensionAttribute3".into(),
                        values: vec![text("three")],
                    },
                    AttrChange {
                        op: ModOp::Delete,
                        attribute: "proxyAddresses".into(),
                        values: vec![text("smtp:stale@x")],
                    },
                ],
            }),
            changes: vec![
                PropertyChange {
                    attribute: "extensionAttribute3".into(),
                    old: vec![text("old")],
                    new: vec![text("three")],
                },
                PropertyChange {
                    attribute: "proxyAddresses".into(),
                    old: vec![text("SMTP:a@x"), text("smtp:stale@x")],
                    new: vec![text("SMTP:a@x")],
                },
            ],
            removes_values: true,
            added_smtp_addresses: vec![],
            warnings: vec![],
        };
        (plan, current)
    }

    #[test]
    fn a_pin_on_the_planned_value_takes_the_attribute_out_of_the_plan() {
        let (mut p, current) = plan();
        let check = check_pins(
            &mut p,
            vec![pin("proxyaddresses", &["SMTP:a@x"])],
            &current,
            |_| None,
        );
        assert_eq!(check.kept.len(), 1);
        assert!(check.released.is_empty());
        assert_eq!(p.changes.len(), 1);
        assert_eq!(p.changes[0].attribute, "extensionAttribute3");
        let modify = p.modify.as_ref().expect("modify");
        assert_eq!(modify.changes.len(), 1);
        assert!(!p.removes_values, "the removal was pinned away");
        assert!(check.update().release.is_empty());
    }

    #[test]
    fn a_pin_whose_cloud_value_changed_is_released_and_the_change_planned() {
        let (mut p, current) = plan();
        let check = check_pins(
            &mut p,
            vec![pin("extensionAttribute3", &["earlier"])],
            &current,
            |_| None,
        );
        assert!(check.kept.is_empty());
        assert_eq!(check.released.len(), 1);
        assert_eq!(p.changes.len(), 2, "nothing taken out");
        assert_eq!(
            check.update().release,
            vec![pin("extensionAttribute3", &[]).key()]
        );
    }

    #[test]
    fn pins_covering_every_change_leave_nothing_to_write() {
        let (mut p, current) = plan();
        let check = check_pins(
            &mut p,
            vec![
                pin("extensionAttribute3", &["three"]),
                pin("proxyAddresses", &["SMTP:a@x"]),
            ],
            &current,
            |_| None,
        );
        assert_eq!(check.kept.len(), 2);
        assert!(p.modify.is_none() && p.changes.is_empty() && !p.removes_values);
    }

    #[test]
    fn with_no_change_planned_a_pin_holds_only_while_ad_holds_its_value() {
        let (mut p, current) = plan();
        p.changes.clear();
        p.modify = None;
        // AD holds "old"; Exchange Online maps to it too (no change): the cloud value changed
        // away from the pinned one.
        let check = check_pins(
            &mut p,
            vec![pin("extensionAttribute3", &["three"])],
            &current,
            |_| None,
        );
        assert_eq!(check.released.len(), 1);
        let check = check_pins(
            &mut p,
            vec![pin("extensionAttribute3", &["OLD"])],
            &current,
            |_| None,
        );
        assert_eq!(check.released.len(), 1, "values compare exactly");
        let check = check_pins(
            &mut p,
            vec![pin("extensionAttribute3", &["old"])],
            &current,
            |_| None,
        );
        assert_eq!(check.kept.len(), 1);
    }
}
