//! Integration tests of the AD connector against a real lab Samba AD DC (`lab/up`).
//! Tests share one DC (`LabDc::shared()`) and create objects under names of their own.

mod equality;
mod errors;
mod forest_routing;
mod kerberos;
mod lab_schema;
mod least_privilege;
mod limits;
mod locator;
mod match_scan;
mod paging_and_ranges;
mod readable;
mod reads;
mod schema_info;
mod side_connection;
mod usn;
mod winad_binds;
mod writes;

use std::sync::atomic::{AtomicU32, Ordering};

use exo_writeback_ad::{AdConfig, AdConnection};
use exo_writeback_core::directory::{AttrValue, Attributes};
use exo_writeback_core::secret::Secret;
use exo_writeback_testlab::LabDc;

/// The `[ad]` section lab/up wrote for this DC.
pub fn lab_config(dc: &LabDc) -> AdConfig {
    #[derive(serde::Deserialize)]
    struct File {
        ad: AdConfig,
    }
    let text = std::fs::read_to_string(&dc.config_file).expect("lab config file");
    toml::from_str::<File>(&text).expect("lab config parses").ad
}

pub async fn connect(dc: &LabDc) -> AdConnection {
    AdConnection::connect(&lab_config(dc), Secret::new(dc.password()))
        .await
        .expect("connect to the lab DC")
}

/// A name no other test (or earlier run on the same DC) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn text(v: &str) -> AttrValue {
    AttrValue::Text(v.to_string())
}

/// Create a contact in CN=Users with extra attributes; returns its DN.
pub async fn new_contact(
    conn: &AdConnection,
    cn: &str,
    extra: &[(&str, Vec<AttrValue>)],
) -> String {
    let dn = format!(
        "CN={},CN=Users,{}",
        exo_writeback_core::ldap_text::escape_dn_value(cn),
        conn.base_dn()
    );
    let mut attrs = Attributes::new();
    attrs.insert("objectClass", vec![text("contact")]);
    for (name, values) in extra {
        attrs.insert(name, values.clone());
    }
    conn.add(&dn, &attrs).await.expect("create test contact");
    dn
}
