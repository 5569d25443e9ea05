//! Listing groups, mail contacts and a group's members (issue 17): the same InvokeCommand
//! paging, retries and per-record errors as the mailboxes, through Get-DistributionGroup,
//! Get-MailContact and Get-DistributionGroupMember (`PROTOCOL.md` §2).

use exo_writeback_core::mail_recipient::{GroupMember, MailRecipient};
use futures::stream::StreamExt;
use serde_json::{Map, Value};

use super::{ExoClient, ResultStream, record_error};
use crate::error::ExoError;
use crate::wire::{
    MEMBER_PROPERTIES, contact_properties, group_properties, member_from_record,
    recipient_from_record,
};

fn listing(filter: Option<&str>) -> Map<String, Value> {
    let mut params = Map::new();
    params.insert("ResultSize".into(), Value::String("Unlimited".into()));
    if let Some(f) = filter {
        params.insert("Filter".into(), Value::String(f.to_owned()));
    }
    params
}

impl ExoClient {
    /// Every distribution group and mail-enabled security group matching an optional OPATH
    /// filter (`Get-DistributionGroup -ResultSize Unlimited`). Room lists come too (they are
    /// groups to the service); [`MailRecipient::is_group`] tells them apart. A malformed
    /// record is an [`ExoError::MalformedRecord`](crate::ExoError::MalformedRecord) item and
    /// the stream goes on.
    pub fn distribution_groups(&self, filter: Option<&str>) -> ResultStream<MailRecipient> {
        let select = group_properties();
        self.invoke_selecting("Get-DistributionGroup", listing(filter), Some(&select))
            .map(|r| r.and_then(|v| recipient_from_record(&v).map_err(|e| record_error(&v, e))))
            .boxed()
    }

    /// Every mail contact matching an optional OPATH filter (`Get-MailContact -ResultSize
    /// Unlimited`).
    pub fn mail_contacts(&self, filter: Option<&str>) -> ResultStream<MailRecipient> {
        let select = contact_properties();
        self.invoke_selecting("Get-MailContact", listing(filter), Some(&select))
            .map(|r| r.and_then(|v| recipient_from_record(&v).map_err(|e| record_error(&v, e))))
            .boxed()
    }

    /// One distribution group or mail-enabled security group by identity
    /// (`Get-DistributionGroup -Identity`); `None` when the service says there is none.
    pub async fn get_distribution_group(
        &self,
        identity: &str,
    ) -> Result<Option<MailRecipient>, ExoError> {
        let select = group_properties();
        self.get_recipient("Get-DistributionGroup", identity, &select)
            .await
    }

    /// One mail contact by identity (`Get-MailContact -Identity`); `None` when the service
    /// says there is none.
    pub async fn get_mail_contact(
        &self,
        identity: &str,
    ) -> Result<Option<MailRecipient>, ExoError> {
        let select = contact_properties();
        self.get_recipient("Get-MailContact", identity, &select)
            .await
    }

    /// One recipient of `cmdlet` by identity, as `get_mailbox` reads a mailbox.
    async fn get_recipient(
        &self,
        cmdlet: &str,
        identity: &str,
        select: &[&str],
    ) -> Result<Option<MailRecipient>, ExoError> {
        self.get_one(cmdlet, identity, select)
            .await?
            .map(|v| recipient_from_record(&v).map_err(|e| record_error(&v, e)))
            .transpose()
    }

    /// The members of the group `group` (any identity the service accepts — its
    /// ExternalDirectoryObjectId is the unambiguous one), nested groups as members, pages
    /// followed to the end (`-ResultSize Unlimited`: the default of 1,000 would silently cut a
    /// large group).
    pub fn group_members(&self, group: &str) -> ResultStream<GroupMember> {
        let mut params = Map::new();
        params.insert("Identity".into(), Value::String(group.to_owned()));
        params.insert("ResultSize".into(), Value::String("Unlimited".into()));
        self.invoke_selecting(
            "Get-DistributionGroupMember",
            params,
            Some(MEMBER_PROPERTIES),
        )
        .map(|r| r.and_then(|v| member_from_record(&v).map_err(|e| record_error(&v, e))))
        .boxed()
    }
}
