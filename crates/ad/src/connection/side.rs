//! The side connection: a second connection to the same DC, for the reads of a cycle's start
//! that are not the scan — the schema and the read-rights probe.
//!
//! A DC serves one LDAP connection's requests one after another in one process (Samba's
//! prefork model gives each connection to one worker; measured on the lab DC, a second
//! connection lands on another worker), so on the one connection the schema read and the
//! probe's searches queued between the scan's pages and the scan waited for them. On their
//! own connection they run beside it. The side connection binds as the main one does (same
//! configuration, same DC address), lazily, on its first request; it reconnects on its own as
//! any connection does, and a DC that cannot be reached fails its requests as it fails the main
//! connection's (the caller's failover is unchanged). It shares the main connection's schema.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use super::{AdConnection, Counters};

impl AdConnection {
    /// The side connection (this one, on the side connection itself). Opened on its first
    /// request; requests on it do not count in this connection's [`AdConnection::stats`].
    pub fn side(&self) -> &AdConnection {
        match &self.side {
            Some(cell) => cell.get_or_init(|| Box::new(self.sibling())),
            None => self,
        }
    }

    /// A connection like this one, not yet open, sharing its schema.
    fn sibling(&self) -> AdConnection {
        AdConnection {
            config: self.config.clone(),
            transport: self.transport,
            password: self.password.clone(),
            tls: self.tls.clone(),
            timeout: self.timeout,
            live: tokio::sync::Mutex::new(None),
            generation: AtomicU64::new(0),
            counters: Counters::default(),
            root_dse: self.root_dse.clone(),
            base_dn: self.base_dn.clone(),
            bind_identity: self.bind_identity.clone(),
            schema: Arc::clone(&self.schema),
            schema_reads: Arc::clone(&self.schema_reads),
            side: None,
            value_range: self.value_range,
            dial: self.dial.clone(),
            last_used: std::sync::Mutex::new(Instant::now()),
        }
    }
}
