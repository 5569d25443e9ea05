//! `Pairs`: the objects of a full reconcile's scan held waiting for their mailbox are at most
//! `cap` (`read_ahead`); a mailbox read ahead waits for its object whatever the cap; an object
//! let go is decided in the read phase (`tests::read_ahead` shows the same cycles).

use std::collections::{HashMap, VecDeque};

use exo_writeback_core::directory::{Attributes, DirectoryObject};
use exo_writeback_core::mailbox::Mailbox;
use exo_writeback_core::provisioning::{CloudIdSet, Join};
use uuid::Uuid;

use super::{Joined, Pairs};

fn pairs(cap: usize) -> Pairs {
    Pairs {
        mailboxes: HashMap::new(),
        objects: HashMap::new(),
        ids: CloudIdSet::new(),
        ready: VecDeque::new(),
        cap,
    }
}

fn object(n: u128) -> DirectoryObject {
    DirectoryObject {
        dn: format!("CN=user{n},OU=Mailboxes,DC=lab,DC=test"),
        object_guid: Uuid::from_u128(n),
        attributes: Attributes::new(),
    }
}

fn mailbox(n: u128) -> Mailbox {
    Mailbox {
        external_directory_object_id: Some(format!("00000000-0000-0000-0000-{n:012}")),
        ..Mailbox::default()
    }
}

/// Mailbox `n`, joined to object `n`.
fn joined(n: u128) -> Joined {
    let m = mailbox(n);
    let id = m.external_directory_object_id.clone().unwrap_or_default();
    let join = Join {
        cloud_id: id.clone(),
        object_guid: Uuid::from_u128(n),
        dn: object(n).dn,
        updated_at: jiff::Timestamp::UNIX_EPOCH,
    };
    Joined {
        mailbox: m,
        join: (id, join),
    }
}

/// The objectGUIDs paired, in order.
fn ready(p: &Pairs) -> Vec<u128> {
    p.ready
        .iter()
        .map(|(m, o)| {
            assert_eq!(
                m.mailbox.external_directory_object_id,
                mailbox(o.object_guid.as_u128()).external_directory_object_id
            );
            o.object_guid.as_u128()
        })
        .collect()
}

#[test]
fn no_more_than_cap_objects_of_the_scan_wait_for_their_mailbox() {
    for cap in [0, 1, 2, 5] {
        let mut p = pairs(cap);
        for n in 1..=(cap as u128 + 3) {
            p.object(object(n));
            assert!(
                p.objects.len() <= cap,
                "cap {cap}: {} held",
                p.objects.len()
            );
        }
        assert_eq!(
            p.objects.len(),
            cap,
            "cap {cap}: the first objects are held"
        );
        // A mailbox whose object was held is paired; one whose object was let go waits (its
        // object will not come again: the read phase decides it).
        p.mailbox(joined(1));
        p.mailbox(joined(cap as u128 + 3));
        if cap > 0 {
            assert_eq!(ready(&p), [1], "cap {cap}");
            assert_eq!(
                p.objects.len(),
                cap - 1,
                "cap {cap}: the paired object freed its place"
            );
        } else {
            assert!(p.ready.is_empty());
        }
        assert_eq!(p.mailboxes.len(), 1 + usize::from(cap == 0), "cap {cap}");
        // The freed place takes the next object.
        p.object(object(100));
        assert_eq!(p.objects.len(), cap, "cap {cap}");
    }
}

#[test]
fn a_mailbox_read_ahead_waits_for_its_object_whatever_the_cap() {
    let mut p = pairs(1);
    p.object(object(1));
    p.mailbox(joined(2));
    p.mailbox(joined(3));
    // The one place for an object is taken, yet the objects of waiting mailboxes pair.
    p.object(object(3));
    p.object(object(2));
    assert_eq!(ready(&p), [3, 2]);
    assert_eq!((p.objects.len(), p.mailboxes.len()), (1, 0));
}
