//! One InvokeCommand POST with its retries: throttling waited out, the module's transient
//! exceptions and server failures retried with back-off, one token refresh on 401, a timed-out
//! answer resent once at most (PROTOCOL.md §2 "Time-outs", §4).

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value;
use url::Url;

use super::{ExoClient, describe_transport};
use crate::error::{ExoError, ServiceError};
use crate::observe::{ExoEvent, outcome_of};
use crate::retry::{retry_after_of, retryable_status};

/// Whether a transport failure is a time-out waiting for the answer: the request reached the
/// service (unlike a refused or timed-out connection), which may still be working on it.
pub(crate) fn is_answer_timeout(e: &reqwest::Error) -> bool {
    e.is_timeout() && !e.is_connect()
}

/// A request that timed out waiting for its answer is sent once more at most: each time the
/// service may be running the same expensive query (the module does not resend it at all).
pub const ANSWER_TIMEOUT_TRIES: u32 = 2;

impl ExoClient {
    /// Sends one InvokeCommand POST with retries; returns the body of a 2xx answer.
    pub(super) async fn post(
        &self,
        url: &Url,
        body: &Value,
        cmdlet: &str,
        request: &str,
    ) -> Result<Vec<u8>, ExoError> {
        let inner = &self.inner;
        let policy = inner.settings.retry;
        let mut attempt: u32 = 0;
        let mut refreshed = false;
        // Throttled waits charged to this request so far (see `RetryPolicy::throttle_budget`).
        let mut throttled = Duration::ZERO;
        // Tries that timed out waiting for the answer.
        let mut answer_timeouts: u32 = 0;
        let timed_out = |attempts| ExoError::TimedOut {
            request: request.to_owned(),
            timeout_secs: inner.settings.timeout.as_secs(),
            attempts,
        };
        loop {
            attempt += 1;
            let (token, generation) = inner.tokens.get().await?;
            inner.api_requests.fetch_add(1, Ordering::Relaxed);
            let started = std::time::Instant::now();
            let attempted = |outcome: &'static str| {
                self.observe(ExoEvent::Request {
                    cmdlet: cmdlet.to_owned(),
                    elapsed: started.elapsed(),
                    outcome,
                });
            };
            let result = inner
                .http
                .post(url.clone())
                .bearer_auth(token.expose())
                .header("X-CmdletName", cmdlet)
                .header("X-AnchorMailbox", &inner.settings.anchor_mailbox)
                .header(
                    "Prefer",
                    format!("odata.maxpagesize={}", inner.settings.page_size),
                )
                .header(
                    "X-Prefer",
                    format!("odata.maxpagesize={}", inner.settings.page_size),
                )
                .header("X-ResponseFormat", "json")
                .header("X-SerializationLevel", "Partial")
                .header("Connection-Id", &inner.connection_id)
                .header(reqwest::header::ACCEPT, "application/json")
                .json(body)
                .send()
                .await;
            drop(token);
            match &result {
                Err(e) if is_answer_timeout(e) => attempted("timeout"),
                Err(_) => attempted("transport"),
                Ok(_) => {}
            }
            let (last, wait) = match result {
                Err(e) if is_answer_timeout(&e) => {
                    answer_timeouts += 1;
                    if answer_timeouts >= ANSWER_TIMEOUT_TRIES || attempt >= policy.max_attempts {
                        return Err(timed_out(attempt));
                    }
                    (
                        describe_transport(&e),
                        policy.backoff(attempt, rand::random()),
                    )
                }
                Err(e) => (
                    describe_transport(&e),
                    policy.backoff(attempt, rand::random()),
                ),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let retry_after = retry_after_of(&resp);
                    let body = resp.bytes().await;
                    match &body {
                        Ok(_) => attempted(outcome_of(status)),
                        Err(e) if is_answer_timeout(e) => attempted("timeout"),
                        Err(_) => attempted("transport"),
                    }
                    match body {
                        Err(e) if is_answer_timeout(&e) => {
                            answer_timeouts += 1;
                            if answer_timeouts >= ANSWER_TIMEOUT_TRIES
                                || attempt >= policy.max_attempts
                            {
                                return Err(timed_out(attempt));
                            }
                            (
                                format!("HTTP {status}, then {}", describe_transport(&e)),
                                policy.backoff(attempt, rand::random()),
                            )
                        }
                        Err(e) => (
                            format!("HTTP {status}, then {}", describe_transport(&e)),
                            policy.backoff(attempt, rand::random()),
                        ),
                        Ok(bytes) if (200..300).contains(&status) => return Ok(bytes.to_vec()),
                        Ok(bytes) if status == 401 => {
                            let error = ServiceError::parse(&bytes);
                            if refreshed {
                                return Err(ExoError::Unauthorized {
                                    request: request.to_owned(),
                                    error,
                                });
                            }
                            tracing::info!(request, "access token rejected; refreshing once");
                            refreshed = true;
                            inner.tokens.invalidate(generation).await;
                            attempt -= 1;
                            continue;
                        }
                        Ok(bytes) if status == 403 => {
                            return Err(ExoError::Forbidden {
                                request: request.to_owned(),
                                error: ServiceError::parse(&bytes),
                            });
                        }
                        Ok(bytes) if retryable_status(status) => {
                            let error = ServiceError::parse(&bytes);
                            // The service reports unknown objects even under 500
                            // (capture C7); that answer will not change on a retry.
                            if error.is_object_not_found() {
                                return Err(ExoError::Service {
                                    request: request.to_owned(),
                                    status,
                                    error,
                                });
                            }
                            let wait = if status == 429 || retry_after.is_some() {
                                policy.throttle_wait(retry_after, attempt, rand::random())
                            } else {
                                policy.backoff(attempt, rand::random())
                            };
                            if status == 429
                                && let Some(total) = policy.free_throttle(throttled, wait)
                            {
                                // Asked to slow down, not a failure: wait it out without
                                // using up a try.
                                throttled = total;
                                tracing::info!(
                                    request,
                                    wait_ms = wait.as_millis() as u64,
                                    throttled_s = throttled.as_secs(),
                                    "Exchange Online is throttling; waiting as asked"
                                );
                                attempt -= 1;
                                self.observe(ExoEvent::Throttled { wait });
                                tokio::time::sleep(wait).await;
                                continue;
                            }
                            (format!("HTTP {status}: {error}"), wait)
                        }
                        Ok(bytes) => {
                            let error = ServiceError::parse(&bytes);
                            // The module retries its named transient back-end exceptions
                            // whatever the status (often 400); other client errors stand.
                            if !error.is_transient_backend() {
                                return Err(ExoError::Service {
                                    request: request.to_owned(),
                                    status,
                                    error,
                                });
                            }
                            (
                                format!("HTTP {status}: {error}"),
                                policy.backoff(attempt, rand::random()),
                            )
                        }
                    }
                }
            };
            if attempt >= policy.max_attempts {
                return Err(ExoError::RetriesExhausted {
                    request: request.to_owned(),
                    attempts: attempt,
                    last,
                });
            }
            tracing::warn!(
                request,
                attempt,
                wait_ms = wait.as_millis() as u64,
                %last,
                "Exchange Online request failed; retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }
}
