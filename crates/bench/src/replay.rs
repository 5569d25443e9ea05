//! The DC's raw limits, measured with ldap3 alone over one already-bound connection: the
//! engine's modifies replayed one at a time and pipelined (several in flight on the one
//! connection, which ldap3 multiplexes), and a paged read of the attributes a full reconcile
//! reads.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use exo_writeback_testlab::LabDc;
use futures::StreamExt;
use ldap3::adapters::{EntriesOnly, PagedResults};
use ldap3::controls::RawControl;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Mod, Scope, SearchEntry};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

const PERMISSIVE_MODIFY_OID: &str = "1.2.840.113556.1.4.1413";

/// One object's modify: its DN and the modifications.
pub type ObjectMods = (String, Vec<Mod<Vec<u8>>>);

/// A bound connection to `dc`, TLS verified against the lab CA.
async fn bind(dc: &LabDc) -> anyhow::Result<Ldap> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&dc.ca_file)? {
        roots.add(cert?)?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let settings = LdapConnSettings::new().set_config(Arc::new(tls));
    let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &dc.url).await?;
    ldap3::drive!(conn);
    ldap.simple_bind(&dc.bind_dn, &dc.password())
        .await?
        .success()?;
    Ok(ldap)
}

async fn modify(mut ldap: Ldap, dn: String, m: Vec<Mod<Vec<u8>>>) -> anyhow::Result<()> {
    ldap.with_controls(RawControl {
        ctype: PERMISSIVE_MODIFY_OID.to_string(),
        crit: false,
        val: None,
    })
    .modify(&dn, m)
    .await?
    .success()
    .with_context(|| format!("modify {dn}"))?;
    Ok(())
}

/// The modifies replayed over one connection with up to `in_flight` outstanding (1 = one at
/// a time, each awaited before the next is sent). Returns the time from the first send to the
/// last answer.
pub async fn modifies(
    dc: &LabDc,
    mods: Vec<ObjectMods>,
    in_flight: usize,
) -> anyhow::Result<Duration> {
    let mut ldap = bind(dc).await?;
    let started = Instant::now();
    let handle = ldap.clone();
    let mut results = futures::stream::iter(mods)
        .map(|(dn, m)| modify(handle.clone(), dn, m))
        .buffer_unordered(in_flight.max(1));
    while let Some(r) = results.next().await {
        r?;
    }
    let elapsed = started.elapsed();
    let _ = ldap.unbind().await;
    Ok(elapsed)
}

/// A paged subtree read (1,000 per page, as the agent pages) of `attributes` of every object
/// under `base`: what a full reconcile must at least read from AD. Returns the objects read
/// and the time.
pub async fn paged_read(
    dc: &LabDc,
    base: &str,
    attributes: &[String],
) -> anyhow::Result<(u64, Duration)> {
    let mut ldap = bind(dc).await?;
    let started = Instant::now();
    let adapters: Vec<Box<dyn ldap3::adapters::Adapter<_, _>>> = vec![
        Box::new(EntriesOnly::new()),
        Box::new(PagedResults::new(1000)),
    ];
    let mut search = ldap
        .streaming_search_with(
            adapters,
            base,
            Scope::Subtree,
            "(objectClass=*)",
            attributes.to_vec(),
        )
        .await?;
    let mut n = 0u64;
    while let Some(entry) = search.next().await? {
        let entry = SearchEntry::construct(entry);
        n += u64::from(!entry.dn.is_empty());
    }
    search.finish().await.success()?;
    let elapsed = started.elapsed();
    let _ = ldap.unbind().await;
    Ok((n, elapsed))
}
