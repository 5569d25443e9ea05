//! Exchange Online connector: reads mailboxes through the admin API that the
//! ExchangeOnlineManagement v3 module uses (`POST /adminapi/beta/{tenant}/InvokeCommand`),
//! with app-only OAuth (client secret or certificate), paging as a stream, and bounded,
//! jittered retries. See `PROTOCOL.md` for every request and response shape and its source.
//!
//! Architecture invariant: wire types stay in this crate; callers get the core's
//! [`exo_writeback_core::mailbox::Mailbox`].

pub mod certificate;
pub mod client;
pub mod config;
pub mod endpoints;
pub mod error;
pub mod filter;
pub mod observe;
pub mod retry;
pub mod safelist;
pub mod token;
pub mod wire;

pub use certificate::CertificateInfo;
pub use client::{ClientStats, ExoClient, ResultStream};
pub use config::{CertificateAssertion, Cloud, ConfigError, Credentials, ExoConfig, ExoSettings};
pub use error::{ExoError, ServiceError};
pub use observe::{ExoEvent, ExoObserver};
pub use retry::RetryPolicy;
pub use safelist::JunkEmailConfiguration;
