//! objectGUID ⇄ UUID. AD stores objectGUID as 16 bytes in the Windows GUID layout: the first
//! three fields little-endian, the last eight bytes as they are (`Uuid::from_bytes_le`).
//! ImmutableId in Entra ID / Exchange Online is base64 of those 16 bytes.
// (implementation: AD connector helper)
