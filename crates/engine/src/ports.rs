//! The ports the engine talks through: where mailboxes come from and the directory they are
//! written to. The CLI implements them over the real Exchange Online and AD clients; unit tests
//! use in-memory fakes.

use std::sync::Arc;

use exo_writeback_core::directory::{AttrValue, DirectoryObject, ObjectModify};
use exo_writeback_core::drift::ChangeOrigin;
use exo_writeback_core::mail_recipient::GroupMember;
use exo_writeback_core::mailbox::{Mailbox, RecipientKind};
use exo_writeback_core::provisioning::SourceIdentity;
use exo_writeback_core::schema::Schema;
use futures::stream::BoxStream;
use uuid::Uuid;

/// What a [`SourceError`] means for the listing it ends or interrupts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceErrorKind {
    /// Only this record is bad: the stream goes on.
    Record,
    /// The service answered, and reported errors beside a page's records (Exchange Online's
    /// `@adminapi.errors`): the records before the error were handed on and are processed;
    /// the stream ends here, incomplete.
    Reported,
    /// The listing broke off (the service unreachable, a refused token, a broken page): the
    /// stream ends here, incomplete.
    Broken,
}

/// An error reading mailboxes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SourceError {
    pub message: String,
    pub kind: SourceErrorKind,
    /// A bad record's identity, as far as it could be read (per-record errors only).
    pub record: Option<SourceIdentity>,
}

impl SourceError {
    /// The listing broke off with this message.
    pub fn broken(message: impl Into<String>) -> Self {
        SourceError {
            message: message.into(),
            kind: SourceErrorKind::Broken,
            record: None,
        }
    }
    /// Only this record is bad (the stream goes on).
    pub fn is_per_record(&self) -> bool {
        self.kind == SourceErrorKind::Record
    }
}

/// Whether this process may still send modifies to AD: one writer per state. A state shared by
/// several agents (PostgreSQL) answers from its writer lease — a lease that lapsed or was taken
/// over stops the writes before the next modify; a state of one process (SQLite, behind its
/// file lock) always may ([`Unfenced`]). The store's own writes are fenced by the store.
pub trait WriteFence: Send + Sync {
    /// `Err(why)` when this process no longer holds the right to write.
    fn may_write(&self) -> Result<(), String>;
}

/// The fence of a state no other process writes (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct Unfenced;

impl WriteFence for Unfenced {
    fn may_write(&self) -> Result<(), String> {
        Ok(())
    }
}

/// A stream of mailboxes that holds at most one result page in memory.
pub type MailboxStream = BoxStream<'static, Result<Mailbox, SourceError>>;

/// Where mailboxes come from (Exchange Online) — and groups and mail contacts, read into the
/// same record with their [`RecipientKind`] (issue 17).
#[allow(async_fn_in_trait)]
pub trait MailboxSource {
    /// Every mailbox (initial and full cycles).
    fn all(&self) -> MailboxStream;
    /// Mailboxes with `WhenChangedUTC >= since - overlap`, each at most once.
    fn changed_since(&self, since: jiff::Timestamp, overlap: jiff::SignedDuration)
    -> MailboxStream;
    /// The groups (`RecipientKind::Group`: distribution groups and mail-enabled security
    /// groups) or mail contacts (`RecipientKind::Contact`) as records of that kind: every one,
    /// or with `changed = Some((since, overlap))` those with `WhenChangedUTC >= since -
    /// overlap`, each at most once. No default: a source that forgot it would silently never
    /// write a group back.
    fn recipients(
        &self,
        kind: RecipientKind,
        changed: Option<(jiff::Timestamp, jiff::SignedDuration)>,
    ) -> MailboxStream;
    /// One recipient by identity (ExternalDirectoryObjectId, UPN, SMTP address …) — a mailbox,
    /// else a group or contact of the kinds the source reads; `None` when the service says
    /// there is none.
    async fn get(&self, identity: &str) -> Result<Option<Mailbox>, SourceError>;
    /// Every member of the group `group` (its ExternalDirectoryObjectId), nested groups as
    /// members, all pages (`write_membership`, issue 17). Any error — a page the service
    /// refused, a record that cannot be read — is the answer: an incomplete list would delete
    /// members that are still there. No default: a source that forgot it would write nothing.
    async fn group_members(&self, group: &str) -> Result<Vec<GroupMember>, SourceError>;
}

/// What kind of directory error it is: it decides what the engine does next. The adapter
/// classifies its protocol's errors (result codes, broken connections) into these kinds; the
/// engine knows no protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectoryErrorKind {
    /// The directory could not be reached, or the connection broke: not the object's fault. A
    /// modify is sent again after a wait, and the write phase stops when it stays unreachable.
    Unreachable,
    /// The directory says its schema does not allow the change: the schema is read again.
    Schema,
    /// The directory refused this operation (rights, a constraint, no such object …).
    Refused,
}

/// An error of the directory (AD).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DirectoryError {
    /// The whole, actionable message (operation, DN, what to do).
    pub message: String,
    /// The directory's answer as the adapter names it (e.g. `LDAP result 50`), when the
    /// message does not already say it: it leads the reason an object's outcome shows.
    pub result: Option<String>,
    pub kind: DirectoryErrorKind,
}

impl DirectoryError {
    /// A refusal with this message.
    pub fn new(message: impl Into<String>) -> Self {
        DirectoryError {
            message: message.into(),
            result: None,
            kind: DirectoryErrorKind::Refused,
        }
    }
    /// The directory cannot be reached.
    pub fn unreachable(message: impl Into<String>) -> Self {
        DirectoryError {
            kind: DirectoryErrorKind::Unreachable,
            ..DirectoryError::new(message)
        }
    }
    /// Not the object's fault: the directory could not be reached.
    pub fn is_unreachable(&self) -> bool {
        self.kind == DirectoryErrorKind::Unreachable
    }
    /// The directory said the schema does not allow the change: re-read the schema.
    pub fn suggests_schema_change(&self) -> bool {
        self.kind == DirectoryErrorKind::Schema
    }
    /// The reason an object's outcome shows: the directory's answer, then the message.
    pub fn reason(&self) -> String {
        match &self.result {
            Some(result) => format!("{result}: {}", self.message),
            None => self.message.clone(),
        }
    }
}

/// An attribute the plans need that the directory account may not read (the directory leaves
/// it out of its answers without an error): it is not planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadableAttribute {
    pub attribute: String,
    /// Which account, on which objects, why, and the command that grants the right.
    pub message: String,
}

/// What a scan of the search scope ([`Directory::scan_match_keys`]) covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanScope {
    /// The search bases, not the whole forest.
    SearchBases,
    /// The whole forest: the scope of [`Directory::scan_addresses`].
    Forest,
}

/// Where the directory's change counter stood (Microsoft Learn, "Polling for Changes Using the
/// USNChanged Attribute"): the DC that counts — its identity, which a restore from backup
/// changes (the NTDS Settings object and its invocationId) — and its highestCommittedUSN. Every
/// change of an object on that DC after the mark, its creation, move and deletion too, gives it
/// a `uSNChanged` above `usn`. A mark of one DC means nothing on another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeMark {
    /// The DC and the incarnation of its database, as the directory names them.
    pub dc: String,
    pub usn: u64,
}

/// The directory the engine writes (AD). Every value put into a filter is escaped by the
/// implementation.
#[allow(async_fn_in_trait)]
pub trait Directory {
    /// The schema, cached.
    async fn schema(&self) -> Result<Arc<Schema>, DirectoryError>;
    /// Read the schema again (after an error, or to pick up a schema extension).
    async fn refresh_schema(&self) -> Result<Arc<Schema>, DirectoryError>;
    /// Objects in the search scope whose `attribute` equals `value` (escaped).
    async fn find_by_attribute(
        &self,
        attribute: &str,
        value: &AttrValue,
        attributes: &[String],
    ) -> Result<Vec<DirectoryObject>, DirectoryError>;
    async fn read_by_guid(
        &self,
        guid: &Uuid,
        attributes: &[String],
    ) -> Result<Option<DirectoryObject>, DirectoryError>;
    async fn read_by_dn(
        &self,
        dn: &str,
        attributes: &[String],
    ) -> Result<Option<DirectoryObject>, DirectoryError>;
    /// The objects of `guids` that exist, read at once where the directory allows (one search
    /// `(|(objectGUID=…)…)`): a cycle reads the candidates of a batch of mailboxes together
    /// instead of one request per mailbox. By default one read per GUID.
    async fn read_by_guids(
        &self,
        guids: &[Uuid],
        attributes: &[String],
    ) -> Result<Vec<DirectoryObject>, DirectoryError> {
        let mut out = Vec::with_capacity(guids.len());
        for guid in guids {
            out.extend(self.read_by_guid(guid, attributes).await?);
        }
        Ok(out)
    }
    /// One modify, atomically, with the permissive-modify control.
    async fn modify(&self, modify: &ObjectModify) -> Result<(), DirectoryError>;
    /// `(proxy value or mail, DN)` of every object **of the whole forest** (outside the search
    /// scope too: contacts, groups, other domains — Exchange requires proxy addresses to be
    /// unique in the organisation) holding one of `addresses` (case-insensitive): a bare SMTP
    /// address in proxyAddresses (`smtp:` + address) or mail; a whole proxy value with its
    /// prefix (`X500:/o=…`; a bare SMTP address has no colon) in proxyAddresses. One search
    /// for all of them where the directory allows (an OR filter).
    async fn address_holders(
        &self,
        addresses: &[String],
    ) -> Result<Vec<(String, String)>, DirectoryError>;
    /// Of `attributes` (what the plans read), those the account may not read on the objects
    /// the engine writes (empty for a directory that hides nothing). `samples`: the objects
    /// about to be evaluated (a delta's stored joins; the first objects of an initial or full
    /// cycle's scan), where it may check — a check whose cost
    /// does not grow with the directory; empty, or none of them found, the directory samples
    /// objects of its own. No default: a wrapper that forgot to forward it would let the
    /// engine write attributes it cannot read.
    async fn unreadable_attributes(
        &self,
        attributes: &[String],
        samples: &[Uuid],
    ) -> Result<Vec<UnreadableAttribute>, DirectoryError>;
    /// Every object in the search scope holding at least one of `present` (`objectGUID`
    /// selects every object), with its objectGUID, DN and `attributes` (which include
    /// `present`), handed to `on_object` as the result pages arrive: one paged search per
    /// search base instead of one search per mailbox. The engine builds its match index from
    /// it on initial and full cycles, and keeps the objects to match and plan without reading
    /// them again; a directory that cannot list them answers an error and the engine then
    /// searches per mailbox. The answer says whether the search scope was the whole forest
    /// (the scope of [`Directory::scan_addresses`]): then a scan for proxyAddresses and mail
    /// also read every address the guard needs.
    async fn scan_match_keys(
        &self,
        present: &[&str],
        attributes: &[String],
        on_object: &mut (dyn FnMut(DirectoryObject) + Send),
    ) -> Result<ScanScope, DirectoryError>;
    /// Every object **of the whole forest** (the scope of [`Directory::address_holders`])
    /// holding proxyAddresses or mail, with those two attributes, handed to `on_object` as the
    /// result pages arrive: the address guard of initial and full cycles then searches only
    /// for the addresses some object may hold. A directory that cannot list them answers an
    /// error (the default) and the guard searches per mailbox.
    async fn scan_addresses(
        &self,
        on_object: &mut (dyn FnMut(DirectoryObject) + Send),
    ) -> Result<(), DirectoryError> {
        let _ = on_object;
        Err(DirectoryError::new(
            "this directory cannot list the addresses of the forest",
        ))
    }
    /// The change mark of the DC the scan of the search scope ([`Directory::scan_match_keys`])
    /// reads from, now; `None` when the directory has none the engine can use (no change
    /// counter, or a scope served by several DCs). No default: a wrapper that forgot to
    /// forward it would hide the mark, or pass another directory's.
    async fn change_mark(&self) -> Result<Option<ChangeMark>, DirectoryError>;
    /// Of `guids`, those changed since `mark` (`uSNChanged` above it) — modified, moved
    /// (out of the search scope too) or deleted — asked of the mark's DC. An error when the
    /// directory is now served by another DC, or another incarnation of it, or cannot tell:
    /// the caller then reads every object fresh. No default: a wrapper that forgot to forward
    /// it would answer "nothing changed".
    async fn changed_since(
        &self,
        mark: &ChangeMark,
        guids: &[Uuid],
    ) -> Result<Vec<Uuid>, DirectoryError>;
    /// When and on which DC each of `attributes` of the object at `dn` last changed
    /// (`msDS-ReplAttributeMetaData`), for the log entry of an on-premises edit: empty when
    /// the directory does not serve it (Samba does not).
    async fn attribute_origins(
        &self,
        dn: &str,
        attributes: &[String],
    ) -> Result<Vec<ChangeOrigin>, DirectoryError>;
}
