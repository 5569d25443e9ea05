//! The hybrid profile's safelist hashes (`msExchSafeSendersHash`, `msExchBlockedSendersHash`,
//! `msExchSafeRecipientHash`), computed from the lists that
//! `Get-MailboxJunkEmailConfiguration` returns. See PROTOCOL.md for the sources and for
//! what is *not* confirmed by Microsoft's public documentation.

use sha2::{Digest, Sha256};

/// At most this many entries go into one hash attribute.
pub const MAX_SAFELIST_ENTRIES: usize = 1024;

/// The lists of a mailbox's junk email configuration, as read from Exchange Online.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JunkEmailConfiguration {
    pub trusted_senders_and_domains: Vec<String>,
    pub blocked_senders_and_domains: Vec<String>,
    pub trusted_recipients_and_domains: Vec<String>,
}

impl JunkEmailConfiguration {
    pub fn safe_senders_hash(&self) -> Option<Vec<u8>> {
        safelist_hash(&self.trusted_senders_and_domains)
    }
    pub fn blocked_senders_hash(&self) -> Option<Vec<u8>> {
        safelist_hash(&self.blocked_senders_and_domains)
    }
    pub fn safe_recipients_hash(&self) -> Option<Vec<u8>> {
        safelist_hash(&self.trusted_recipients_and_domains)
    }
}

/// Each entry is trimmed and lower-cased, duplicates dropped, hashed with SHA-256 and
/// truncated to its first 4 bytes; the 4-byte values are sorted, the first
/// [`MAX_SAFELIST_ENTRIES`] kept and concatenated. An empty list has no hash (`None`).
pub fn safelist_hash(entries: &[String]) -> Option<Vec<u8>> {
    let mut hashes: Vec<[u8; 4]> = entries
        .iter()
        .map(|e| e.trim().to_lowercase())
        .filter(|e| !e.is_empty())
        .map(|e| {
            let digest = Sha256::digest(e.as_bytes());
            [digest[0], digest[1], digest[2], digest[3]]
        })
        .collect();
    if hashes.is_empty() {
        return None;
    }
    hashes.sort_unstable();
    hashes.dedup();
    hashes.truncate(MAX_SAFELIST_ENTRIES);
    Some(hashes.concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn empty_lists_have_no_hash() {
        assert_eq!(safelist_hash(&[]), None);
        assert_eq!(safelist_hash(&s(&["", "  "])), None);
    }

    #[test]
    fn known_value() {
        // Trimmed, lower-cased, first four bytes of the SHA-256 kept.
        let h = safelist_hash(&s(&["Contoso.com "])).expect("hash");
        let full = Sha256::digest(b"contoso.com");
        assert_eq!(h, full[..4].to_vec());
    }

    #[test]
    fn order_case_and_duplicates_do_not_matter() {
        let a = safelist_hash(&s(&["a@x.com", "B@y.com", "a@x.com"]));
        let b = safelist_hash(&s(&["b@y.com", "A@X.COM"]));
        assert_eq!(a, b);
        assert_eq!(a.map(|v| v.len()), Some(8));
    }

    #[test]
    fn sorted_and_capped() {
        let many: Vec<String> = (0..3000).map(|i| format!("user{i}@example.com")).collect();
        let h = safelist_hash(&many).expect("hash");
        assert_eq!(h.len(), MAX_SAFELIST_ENTRIES * 4);
        let chunks: Vec<&[u8]> = h.chunks(4).collect();
        assert!(chunks.windows(2).all(|w| w[0] < w[1]));
    }
}
