//! Integration tests of the lab: real Samba AD DCs started by lab/up, checked with the
//! OpenLDAP tools over LDAPS (CA verified), stopped by lab/down.

mod forest;
mod lifecycle;
mod schema;
mod scripts;
mod support;
mod variants;
