//! A listing's result pages, one after another: each page fetched, decoded and handed on
//! record by record (their JSON text), `@odata.nextLink` followed, errors in order.

use std::collections::VecDeque;
use std::sync::Arc;

use futures::stream::StreamExt;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use url::Url;

use super::{ExoClient, ResultStream};
use crate::error::ExoError;
use crate::wire::{UnreadableRecord, decode_page};

fn unreadable_error(r: UnreadableRecord) -> ExoError {
    ExoError::MalformedRecord {
        problem: r.problem(),
        mailbox: r.name,
        external_directory_object_id: r.external_directory_object_id,
        primary_smtp_address: r.primary_smtp_address,
    }
}

pub(super) struct Paging {
    client: ExoClient,
    cmdlet: String,
    body: Arc<Value>,
    next: Option<Url>,
    page_no: u32,
    /// The page's records in order; records that could not be read are errors.
    buffer: VecDeque<Result<Box<RawValue>, ExoError>>,
    pending_error: Option<ExoError>,
    done: bool,
}

impl Paging {
    async fn fetch(&mut self, url: Url) -> Result<(), ExoError> {
        let request = format!("{} (result page {})", self.cmdlet, self.page_no);
        let following = self.page_no > 1;
        let bytes = match self
            .client
            .post(&url, &self.body, &self.cmdlet, &request)
            .await
        {
            Ok(b) => b,
            Err(ExoError::Service { status, error, .. })
                if following && matches!(status, 400 | 404 | 410) =>
            {
                return Err(ExoError::BrokenNextLink {
                    request,
                    status,
                    error,
                });
            }
            Err(e) => return Err(e),
        };
        let page = decode_page(&bytes).map_err(|problem| ExoError::MalformedPage {
            request: request.clone(),
            problem,
        })?;
        tracing::debug!(
            request = %request,
            records = page.records.len(),
            unreadable = page.unreadable.len(),
            more = page.next_link.is_some(),
            "result page"
        );
        // Back into the page's order: the unreadable records are errors of their own.
        let total = page.records.len() + page.unreadable.len();
        let mut readable = page.records.into_iter();
        let mut unreadable = page.unreadable.into_iter().peekable();
        self.buffer = (0..total)
            .filter_map(
                |position| match unreadable.next_if(|u| u.position == position) {
                    Some(u) => Some(Err(unreadable_error(u))),
                    None => readable.next().map(Ok),
                },
            )
            .collect();
        if !page.errors.is_empty() {
            // The module writes these as cmdlet errors and marks the run failed: after the
            // page's records, one error, and no further page.
            tracing::warn!(request = %request, errors = ?page.errors, "Exchange Online reported errors with a result page");
            self.pending_error = Some(ExoError::CmdletErrors {
                request,
                errors: page.errors,
            });
            return Ok(());
        }
        if let Some(link) = page.next_link {
            match self.client.next_link(&link, &request) {
                Ok(u) if u == url => {
                    self.pending_error = Some(ExoError::MalformedPage {
                        request,
                        problem: "@odata.nextLink points back to the page just read (paging would never end)".into(),
                    });
                }
                Ok(u) => self.next = Some(u),
                Err(e) => self.pending_error = Some(e),
            }
        }
        Ok(())
    }
}

impl Paging {
    /// The records of `cmdlet`'s pages, from `first` on.
    pub(super) fn start(
        client: ExoClient,
        cmdlet: &str,
        parameters: Map<String, Value>,
        first: Url,
    ) -> ResultStream<Box<RawValue>> {
        let state = Paging {
            client,
            cmdlet: cmdlet.to_owned(),
            body: Arc::new(json!({
                "CmdletInput": {"CmdletName": cmdlet, "Parameters": parameters}
            })),
            next: Some(first),
            page_no: 0,
            buffer: VecDeque::new(),
            pending_error: None,
            done: false,
        };
        futures::stream::unfold(state, |mut st| async move {
            loop {
                if let Some(item) = st.buffer.pop_front() {
                    return Some((item, st));
                }
                if st.done {
                    return None;
                }
                if let Some(e) = st.pending_error.take() {
                    st.done = true;
                    return Some((Err(e), st));
                }
                let url = st.next.take()?;
                st.page_no += 1;
                match st.fetch(url).await {
                    Ok(()) => continue,
                    Err(e) => {
                        st.done = true;
                        st.buffer.clear();
                        return Some((Err(e), st));
                    }
                }
            }
        })
        .boxed()
    }
}
