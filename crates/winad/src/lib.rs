//! winad: a Windows-shaped LDAP server for tests, for what a Samba DC cannot show — a forest
//! with a child domain, global-catalog answers across domains, referrals for a base in another
//! domain, automatic value ranging (MaxValRange), MaxPageSize on unpaged searches, bind
//! sub-codes worded as Windows words them, timeLimitExceeded, paging cookies discarded, and the
//! Notice of Disconnection. Built on `ldap3_proto` over tokio, split as lldap splits its
//! server: a pure handler from a request to its replies (`handler.rs`, `search.rs`,
//! `root_dse.rs`) and a thin socket layer (`server.rs`). Every rule cites its source (MS-ADTS
//! section, KB article) where it is implemented and in the crate's README.
//!
//! Not a directory server: no ACLs (any bound account reads and writes everything), no
//! replication, no Kerberos; a filter value that is not UTF-8 cannot be decoded by ldap3_proto
//! 0.9 and closes the connection.

mod filter;
mod handler;
pub mod model;
mod root_dse;
mod search;
mod server;
mod session;
pub mod spec;
mod tls;

pub use handler::{SIGNING_REQUIRED, bind_failure_text};
pub use model::{AccountState, DcSpec, Directory, DomainSpec, Entry, Policies, text_attr};
pub use search::{COOKIE_GONE, referral_text};
pub use server::{Faults, NOTICE_OF_DISCONNECTION, RunningDc, WinAd};
pub use spec::ForestSpec;
