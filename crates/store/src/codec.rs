//! Encoding helpers every backend shares, so the backends store, fold and order alike: time
//! keys, JSON columns, identity folding.

use std::path::Path;

use jiff::Timestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::{Result, StoreError};
use exo_writeback_core::provisioning::Join;

/// The ordering key of an instant: nanoseconds since the epoch, clamped to `i64`.
pub fn time_key(t: Timestamp) -> i64 {
    let n = t.as_nanosecond();
    i64::try_from(n).unwrap_or(if n < 0 { i64::MIN } else { i64::MAX })
}

pub fn to_json<T: Serialize>(path: &Path, what: &'static str, value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Unstorable {
        path: path.to_path_buf(),
        what,
        detail: e.to_string(),
    })
}

pub fn from_json<T: DeserializeOwned>(path: &Path, what: &'static str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::BadRow {
        path: path.to_path_buf(),
        what,
        detail: e.to_string(),
    })
}

pub fn parse_time(path: &Path, what: &'static str, text: &str) -> Result<Timestamp> {
    text.parse().map_err(|e: jiff::Error| StoreError::BadRow {
        path: path.to_path_buf(),
        what,
        detail: e.to_string(),
    })
}

pub fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

pub fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Case folding for identity columns (DNs and SMTP addresses compare case-insensitively).
pub fn fold(s: &str) -> String {
    s.to_lowercase()
}

pub fn guid_text(g: &Uuid) -> String {
    g.hyphenated().to_string()
}

/// The ExternalDirectoryObjectId in the form stored for look-ups: lower case, no `User_`.
pub fn source_key(id: &str) -> String {
    let folded = fold(id.trim());
    match folded.strip_prefix("user_") {
        Some(rest) => rest.to_owned(),
        None => folded,
    }
}

pub fn decode_join(
    path: &Path,
    (cloud_id, guid, dn, updated_at): (String, String, String, String),
) -> Result<Join> {
    Ok(Join {
        cloud_id,
        object_guid: Uuid::parse_str(&guid).map_err(|e| StoreError::BadRow {
            path: path.to_path_buf(),
            what: "join objectGUID",
            detail: e.to_string(),
        })?,
        dn,
        updated_at: parse_time(path, "join time", &updated_at)?,
    })
}

pub fn collect_json<T: DeserializeOwned>(
    path: &Path,
    what: &'static str,
    texts: Vec<String>,
) -> Result<Vec<T>> {
    texts.iter().map(|t| from_json(path, what, t)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_keys_order_like_timestamps_and_clamp_outside_i64() {
        let cases = [
            ("1970-01-01T00:00:00Z", 0),
            ("1970-01-01T00:00:00.000000001Z", 1),
            ("1969-12-31T23:59:59Z", -1_000_000_000),
            ("2026-03-01T08:00:00.1234567Z", 1_772_352_000_123_456_700),
        ];
        for (text, key) in cases {
            let t: Timestamp = text.parse().expect("timestamp");
            assert_eq!(time_key(t), key, "{text}");
        }
        assert_eq!(time_key(Timestamp::MAX), i64::MAX);
        assert_eq!(time_key(Timestamp::MIN), i64::MIN);
    }

    #[test]
    fn source_keys_fold_case_and_the_user_prefix() {
        let cases = [
            ("ABC-def", "abc-def"),
            ("User_ABC-def", "abc-def"),
            ("user_abc", "abc"),
            ("  User_x  ", "x"),
            ("Username", "username"),
        ];
        for (input, want) in cases {
            assert_eq!(source_key(input), want, "{input:?}");
        }
    }
}
