//! Exchange Online as the engine's mailbox source, over the `exo` client.

use exo_writeback_core::mail_recipient::{GroupMember, MailRecipient};
use exo_writeback_core::mailbox::{Mailbox, RecipientKind};
use exo_writeback_core::provisioning::SourceIdentity;
use exo_writeback_engine::{MailboxSource, MailboxStream, SourceError, SourceErrorKind};
use exo_writeback_exo::filter::when_changed_filter;
use exo_writeback_exo::{ExoClient, ExoError};
use futures::StreamExt;

/// Exchange Online as the engine's mailbox source. With `safelist_hashes` (the hybrid
/// profile is enabled) each mailbox's junk email configuration is read too, for the
/// msExch*Hash attributes (one extra request per mailbox); when that read fails the hashes
/// stay unknown, which leaves the AD attributes alone.
pub struct ExoSource {
    pub client: ExoClient,
    pub safelist_hashes: bool,
    /// The kinds besides mailboxes the enabled profiles write back (groups, contacts): `get`
    /// looks an identity up among them too, after the mailboxes.
    pub recipient_kinds: Vec<RecipientKind>,
}

fn source_error(e: ExoError) -> SourceError {
    let record = match &e {
        ExoError::MalformedRecord {
            external_directory_object_id,
            primary_smtp_address,
            ..
        } => Some(SourceIdentity {
            kind: Default::default(),
            external_directory_object_id: external_directory_object_id.clone(),
            primary_smtp_address: primary_smtp_address.clone(),
            user_principal_name: None,
        }),
        _ => None,
    };
    let kind = match &e {
        _ if e.is_record_error() => SourceErrorKind::Record,
        // The service answered the page and reported errors with it: its records were handed
        // on; the listing ends here.
        ExoError::CmdletErrors { .. } => SourceErrorKind::Reported,
        _ => SourceErrorKind::Broken,
    };
    SourceError {
        kind,
        message: e.to_string(),
        record,
    }
}

fn with_hashes(
    client: &ExoClient,
    safelist_hashes: bool,
    stream: exo_writeback_exo::ResultStream<Mailbox>,
) -> MailboxStream {
    if !safelist_hashes {
        return stream.map(|r| r.map_err(source_error)).boxed();
    }
    let client = client.clone();
    stream
        .then(move |r| {
            let client = client.clone();
            async move {
                let mut m = r.map_err(source_error)?;
                if let Err(e) = client.fill_safelist_hashes(&mut m).await {
                    tracing::warn!(mailbox = ?m.primary_smtp_address, error = %e, "cannot read the junk email configuration; the safelist hashes are left alone");
                }
                Ok(m)
            }
        })
        .boxed()
}

/// Groups or contacts as the engine's records, each record's error as the mailboxes'.
fn as_records(stream: exo_writeback_exo::ResultStream<MailRecipient>) -> MailboxStream {
    stream
        .map(|r| r.map(MailRecipient::into_record).map_err(source_error))
        .boxed()
}

impl MailboxSource for ExoSource {
    fn recipients(
        &self,
        kind: RecipientKind,
        changed: Option<(jiff::Timestamp, jiff::SignedDuration)>,
    ) -> MailboxStream {
        let filter = changed.map(|(since, overlap)| {
            when_changed_filter(
                since
                    .checked_sub(overlap.abs())
                    .unwrap_or(jiff::Timestamp::MIN),
            )
        });
        match kind {
            RecipientKind::Group => as_records(self.client.distribution_groups(filter.as_deref())),
            RecipientKind::Contact => as_records(self.client.mail_contacts(filter.as_deref())),
            RecipientKind::Mailbox => match changed {
                Some((since, overlap)) => self.changed_since(since, overlap),
                None => self.all(),
            },
        }
    }
    fn all(&self) -> MailboxStream {
        with_hashes(
            &self.client,
            self.safelist_hashes,
            self.client.mailboxes(None),
        )
    }
    fn changed_since(
        &self,
        since: jiff::Timestamp,
        overlap: jiff::SignedDuration,
    ) -> MailboxStream {
        with_hashes(
            &self.client,
            self.safelist_hashes,
            self.client.changed_since(since, overlap),
        )
    }
    async fn get(&self, identity: &str) -> Result<Option<Mailbox>, SourceError> {
        let mut found = self
            .client
            .get_mailbox(identity)
            .await
            .map_err(source_error)?;
        if self.safelist_hashes
            && let Some(m) = found.as_mut()
            && let Err(e) = self.client.fill_safelist_hashes(m).await
        {
            tracing::warn!(identity, error = %e, "cannot read the junk email configuration; the safelist hashes are left alone");
        }
        if found.is_some() {
            return Ok(found);
        }
        for kind in &self.recipient_kinds {
            let recipient = match kind {
                RecipientKind::Group => self.client.get_distribution_group(identity).await,
                RecipientKind::Contact => self.client.get_mail_contact(identity).await,
                RecipientKind::Mailbox => continue,
            }
            .map_err(source_error)?;
            if let Some(r) = recipient {
                return Ok(Some(r.into_record()));
            }
        }
        Ok(None)
    }
    async fn group_members(&self, group: &str) -> Result<Vec<GroupMember>, SourceError> {
        let mut stream = self.client.group_members(group);
        let mut members = Vec::new();
        while let Some(member) = stream.next().await {
            // A record that cannot be read fails the whole list: a member missing from it
            // would be deleted from the group.
            members.push(member.map_err(|e| SourceError {
                kind: SourceErrorKind::Broken,
                ..source_error(e)
            })?);
        }
        Ok(members)
    }
}
