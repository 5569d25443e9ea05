//! [`FakeSource`]: mailboxes, groups and contacts held in memory.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use exo_writeback_core::mail_recipient::GroupMember;
use exo_writeback_core::mailbox::{Mailbox, RecipientKind};
use futures::StreamExt;

use crate::ports::{MailboxSource, MailboxStream, SourceError, SourceErrorKind};

/// Mailboxes held in memory; cloned handles share them.
#[derive(Clone, Default)]
pub struct FakeSource {
    pub mailboxes: Arc<Mutex<Vec<Mailbox>>>,
    /// When set, streams end with a fatal error after this many mailboxes.
    pub fail_after: Arc<Mutex<Option<usize>>>,
    /// Records that cannot be read (per-record errors): every stream starts with them, and
    /// `get` of their ExternalDirectoryObjectId answers with them.
    pub unreadable: Arc<Mutex<Vec<SourceError>>>,
    /// When set, streams hand on this many mailboxes, then end with an error the service
    /// reported beside them ([`SourceErrorKind::Reported`]) with this text.
    pub reported_after: Arc<Mutex<Option<(usize, String)>>>,
    /// Streams opened (`all` and `changed_since`).
    pub streams: Arc<AtomicUsize>,
    /// Group members by the group's ExternalDirectoryObjectId (an unknown group has none).
    pub members: Arc<Mutex<HashMap<String, Vec<GroupMember>>>>,
    /// When set, every member list answers this error (a page the service refused).
    pub members_error: Arc<Mutex<Option<String>>>,
}

impl FakeSource {
    pub fn set(&self, m: Mailbox) {
        let mut all = self.mailboxes.lock().expect("lock");
        match all
            .iter_mut()
            .find(|x| x.external_directory_object_id == m.external_directory_object_id)
        {
            Some(slot) => *slot = m,
            None => all.push(m),
        }
    }
}

impl FakeSource {
    /// `items` cut after the mailboxes the service reported errors beside, then that error.
    fn with_reported(
        &self,
        mut items: Vec<Result<Mailbox, SourceError>>,
    ) -> Vec<Result<Mailbox, SourceError>> {
        if let Some((n, text)) = self.reported_after.lock().expect("lock").clone() {
            items.truncate(n);
            items.push(Err(SourceError {
                message: text,
                kind: SourceErrorKind::Reported,
                record: None,
            }));
        }
        items
    }

    /// The unreadable records, as a stream starts with them.
    fn unreadable_items(&self) -> Vec<Result<Mailbox, SourceError>> {
        self.unreadable
            .lock()
            .expect("lock")
            .iter()
            .cloned()
            .map(Err)
            .collect()
    }
}

impl FakeSource {
    /// The records of one kind (mailboxes, groups, contacts).
    fn of_kind(&self, kind: RecipientKind) -> Vec<Mailbox> {
        let all = self.mailboxes.lock().expect("lock");
        all.iter().filter(|m| m.kind == kind).cloned().collect()
    }
}

impl MailboxSource for FakeSource {
    fn recipients(
        &self,
        kind: RecipientKind,
        changed: Option<(jiff::Timestamp, jiff::SignedDuration)>,
    ) -> MailboxStream {
        self.streams.fetch_add(1, Ordering::SeqCst);
        let from = changed
            .map(|(since, overlap)| since.checked_sub(overlap).unwrap_or(jiff::Timestamp::MIN));
        let items: Vec<_> = self
            .of_kind(kind)
            .into_iter()
            .filter(|m| from.is_none_or(|f| m.when_changed_utc.is_some_and(|t| t >= f)))
            .map(Ok)
            .collect();
        futures::stream::iter(items).boxed()
    }
    fn all(&self) -> MailboxStream {
        self.streams.fetch_add(1, Ordering::SeqCst);
        let all = self.of_kind(RecipientKind::Mailbox);
        let mut items = self.unreadable_items();
        items.extend(all.into_iter().map(Ok));
        if let Some(n) = *self.fail_after.lock().expect("lock") {
            items.truncate(n);
            items.push(Err(SourceError::broken("connection reset")));
        }
        futures::stream::iter(self.with_reported(items)).boxed()
    }
    fn changed_since(
        &self,
        since: jiff::Timestamp,
        overlap: jiff::SignedDuration,
    ) -> MailboxStream {
        self.streams.fetch_add(1, Ordering::SeqCst);
        let from = since.checked_sub(overlap).unwrap_or(jiff::Timestamp::MIN);
        let all = self.of_kind(RecipientKind::Mailbox);
        let items: Vec<_> = self
            .unreadable_items()
            .into_iter()
            .chain(
                all.into_iter()
                    .filter(move |m| m.when_changed_utc.is_some_and(|t| t >= from))
                    .map(Ok),
            )
            .collect();
        futures::stream::iter(self.with_reported(items)).boxed()
    }
    async fn get(&self, identity: &str) -> Result<Option<Mailbox>, SourceError> {
        if let Some(e) = self.unreadable.lock().expect("lock").iter().find(|e| {
            e.record
                .as_ref()
                .and_then(|r| r.external_directory_object_id.as_deref())
                == Some(identity)
        }) {
            return Err(e.clone());
        }
        let all = self.mailboxes.lock().expect("lock");
        Ok(all
            .iter()
            .find(|m| {
                m.external_directory_object_id.as_deref() == Some(identity)
                    || m.primary_smtp_address
                        .as_deref()
                        .is_some_and(|p| p.eq_ignore_ascii_case(identity))
                    || m.user_principal_name
                        .as_deref()
                        .is_some_and(|p| p.eq_ignore_ascii_case(identity))
            })
            .cloned())
    }
    async fn group_members(&self, group: &str) -> Result<Vec<GroupMember>, SourceError> {
        if let Some(e) = self.members_error.lock().expect("lock").clone() {
            return Err(SourceError::broken(e));
        }
        Ok(self
            .members
            .lock()
            .expect("lock")
            .get(group)
            .cloned()
            .unwrap_or_default())
    }
}
