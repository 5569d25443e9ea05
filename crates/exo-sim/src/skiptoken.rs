//! The `$skiptoken` of a result page's `@odata.nextLink`: where the next page starts and which
//! back-end server produced the page. Opaque to clients (a MAC guards it); the real service's
//! token likewise carries a server name (capture A4, see `routing`).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The position a skiptoken encodes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PagePosition {
    /// Guid of the last mailbox returned.
    pub last: Uuid,
    /// Mailboxes returned so far.
    pub returned: u64,
    /// When the page was issued (simulated seconds).
    pub issued: i64,
    /// Fingerprint of the request body the listing was started with.
    pub fingerprint: u64,
    /// The back-end server that produced the page (index into `routing::BACKENDS`).
    pub backend: u8,
}

const VERSION: u8 = 2;
const LEN: usize = 1 + 16 + 8 + 8 + 8 + 1 + 8;

fn mac(secret: &[u8], data: &[u8]) -> [u8; 8] {
    let mut h = Sha256::new();
    h.update(secret);
    h.update(data);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]
}

pub(crate) fn encode(secret: &[u8], p: &PagePosition) -> String {
    let mut data = Vec::with_capacity(LEN);
    data.push(VERSION);
    data.extend_from_slice(p.last.as_bytes());
    data.extend_from_slice(&p.returned.to_be_bytes());
    data.extend_from_slice(&p.issued.to_be_bytes());
    data.extend_from_slice(&p.fingerprint.to_be_bytes());
    data.push(p.backend);
    let m = mac(secret, &data);
    data.extend_from_slice(&m);
    URL_SAFE_NO_PAD.encode(data)
}

pub(crate) fn decode(secret: &[u8], token: &str) -> Option<PagePosition> {
    let data = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
    if data.len() != LEN || data[0] != VERSION {
        return None;
    }
    let (body, m) = data.split_at(data.len() - 8);
    if mac(secret, body) != m {
        return None;
    }
    let u = |r: std::ops::Range<usize>| -> Option<[u8; 8]> { body.get(r)?.try_into().ok() };
    Some(PagePosition {
        last: Uuid::from_slice(body.get(1..17)?).ok()?,
        returned: u64::from_be_bytes(u(17..25)?),
        issued: i64::from_be_bytes(u(25..33)?),
        fingerprint: u64::from_be_bytes(u(33..41)?),
        backend: *body.get(41)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skiptokens_round_trip_and_refuse_tampering() {
        let secret = [3u8; 32];
        let p = PagePosition {
            last: Uuid::from_u128(42),
            returned: 1000,
            issued: 1_700_000_000,
            fingerprint: 99,
            backend: 2,
        };
        let t = encode(&secret, &p);
        assert_eq!(decode(&secret, &t), Some(p));
        assert_eq!(decode(&[4u8; 32], &t), None);
        let mut bytes = t.into_bytes();
        bytes[5] = if bytes[5] == b'A' { b'B' } else { b'A' };
        assert_eq!(decode(&secret, &String::from_utf8(bytes).unwrap()), None);
        assert_eq!(decode(&secret, "not a token"), None);
    }
}
