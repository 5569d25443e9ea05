//! objectGUID ⇄ UUID. AD stores objectGUID as 16 bytes in the Windows GUID layout: the first
//! three fields little-endian, the last eight bytes as they are (`Uuid::from_bytes_le`).
//! ImmutableId in Entra ID / Exchange Online is base64 of those 16 bytes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use uuid::Uuid;

/// Why bytes or text are not an objectGUID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuidError {
    #[error("an objectGUID is 16 bytes, got {0}")]
    WrongLength(usize),
    #[error("ImmutableId {value:?} is not base64: {reason}")]
    NotBase64 { value: String, reason: String },
    #[error("ImmutableId {value:?} decodes to {len} bytes, an objectGUID is 16")]
    ImmutableIdWrongLength { value: String, len: usize },
}

/// The UUID of an objectGUID value as read from AD (16 bytes, Windows layout).
pub fn uuid_from_object_guid(bytes: &[u8]) -> Result<Uuid, GuidError> {
    let array: [u8; 16] = bytes
        .try_into()
        .map_err(|_| GuidError::WrongLength(bytes.len()))?;
    Ok(Uuid::from_bytes_le(array))
}

/// The 16 bytes AD stores (and an LDAP filter must match) for this GUID.
pub fn object_guid_bytes(guid: &Uuid) -> [u8; 16] {
    guid.to_bytes_le()
}

/// The ImmutableId (base64 of the objectGUID bytes) of this GUID.
pub fn immutable_id(guid: &Uuid) -> String {
    STANDARD.encode(object_guid_bytes(guid))
}

/// The GUID an ImmutableId names.
pub fn uuid_from_immutable_id(value: &str) -> Result<Uuid, GuidError> {
    let bytes = STANDARD
        .decode(value.trim())
        .map_err(|e| GuidError::NotBase64 {
            value: value.to_string(),
            reason: e.to_string(),
        })?;
    if bytes.len() != 16 {
        return Err(GuidError::ImmutableIdWrongLength {
            value: value.to_string(),
            len: bytes.len(),
        });
    }
    uuid_from_object_guid(&bytes)
}

/// The extended DN form `<GUID=...>` AD accepts as a search base for this object.
pub fn guid_dn(guid: &Uuid) -> String {
    format!("<GUID={}>", guid.hyphenated())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // The Windows GUID layout: first three fields byte-swapped, last eight bytes as is.
    const KNOWN: &str = "00112233-4455-6677-8899-aabbccddeeff";
    const KNOWN_BYTES: [u8; 16] = [
        0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee,
        0xff,
    ];
    const KNOWN_IMMUTABLE_ID: &str = "MyIRAFVEd2aImaq7zN3u/w==";

    #[test]
    fn known_vector_bytes() {
        let guid = Uuid::parse_str(KNOWN).unwrap();
        assert_eq!(object_guid_bytes(&guid), KNOWN_BYTES);
        assert_eq!(uuid_from_object_guid(&KNOWN_BYTES).unwrap(), guid);
    }

    #[test]
    fn known_vector_immutable_id() {
        let guid = Uuid::parse_str(KNOWN).unwrap();
        assert_eq!(immutable_id(&guid), KNOWN_IMMUTABLE_ID);
        assert_eq!(uuid_from_immutable_id(KNOWN_IMMUTABLE_ID).unwrap(), guid);
    }

    #[test]
    fn guid_dn_form() {
        let guid = Uuid::parse_str(KNOWN).unwrap();
        assert_eq!(
            guid_dn(&guid),
            "<GUID=00112233-4455-6677-8899-aabbccddeeff>"
        );
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert_eq!(
            uuid_from_object_guid(&[1, 2, 3]),
            Err(GuidError::WrongLength(3))
        );
        assert!(matches!(
            uuid_from_immutable_id("not base64!"),
            Err(GuidError::NotBase64 { .. })
        ));
        assert!(matches!(
            uuid_from_immutable_id("AAAA"),
            Err(GuidError::ImmutableIdWrongLength { len: 3, .. })
        ));
    }

    proptest! {
        #[test]
        fn bytes_round_trip(bytes in proptest::array::uniform16(any::<u8>())) {
            let guid = uuid_from_object_guid(&bytes).unwrap();
            prop_assert_eq!(object_guid_bytes(&guid), bytes);
        }

        #[test]
        fn immutable_id_round_trip(bytes in proptest::array::uniform16(any::<u8>())) {
            let guid = Uuid::from_bytes(bytes);
            prop_assert_eq!(uuid_from_immutable_id(&immutable_id(&guid)).unwrap(), guid);
        }

        #[test]
        fn byte_order_is_windows_layout(bytes in proptest::array::uniform16(any::<u8>())) {
            let guid = uuid_from_object_guid(&bytes).unwrap();
            let big_endian = guid.as_bytes();
            prop_assert_eq!(&big_endian[0..4], &[bytes[3], bytes[2], bytes[1], bytes[0]]);
            prop_assert_eq!(&big_endian[4..6], &[bytes[5], bytes[4]]);
            prop_assert_eq!(&big_endian[6..8], &[bytes[7], bytes[6]]);
            prop_assert_eq!(&big_endian[8..], &bytes[8..]);
        }
    }
}
