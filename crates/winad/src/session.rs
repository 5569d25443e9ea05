//! What a connection remembers between requests: TLS or not, who is bound, the paged-search
//! states (the "cookie pool"), and counters the fault hooks use.

use std::collections::VecDeque;

/// A paged search in progress: the matching entries (normalized DNs, fixed at the first page)
/// and how many were returned.
#[derive(Debug, Clone)]
pub struct ResultSet {
    pub cookie: Vec<u8>,
    pub keys: Vec<String>,
    pub position: usize,
}

/// The state of one connection.
#[derive(Debug, Default)]
pub struct Session {
    /// The connection is protected by TLS (LDAPS).
    pub tls: bool,
    /// The index of the bound account in `Directory::accounts`.
    pub bound: Option<usize>,
    /// Paged-search states, oldest first (MaxResultSetsPerConn; "How LDAP server cookies are
    /// handled": the oldest is discarded first).
    pub result_sets: VecDeque<ResultSet>,
    pub next_cookie: u64,
    /// Pages (paged SearchResultDone) sent on this connection.
    pub pages_served: u64,
}

impl Session {
    pub fn new(tls: bool) -> Session {
        Session {
            tls,
            ..Session::default()
        }
    }

    /// Stores a result set, discarding the oldest beyond `max` (MaxResultSetsPerConn).
    pub fn keep(&mut self, set: ResultSet, max: usize) {
        self.result_sets.push_back(set);
        while self.result_sets.len() > max.max(1) {
            self.result_sets.pop_front();
        }
    }

    pub fn take(&mut self, cookie: &[u8]) -> Option<ResultSet> {
        let at = self.result_sets.iter().position(|s| s.cookie == cookie)?;
        self.result_sets.remove(at)
    }

    pub fn new_cookie(&mut self) -> Vec<u8> {
        self.next_cookie += 1;
        self.next_cookie.to_be_bytes().to_vec()
    }
}
