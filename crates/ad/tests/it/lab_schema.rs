//! The schema the unit tests, the engine's in-memory directory and the benchmark plan against
//! (`core::schema::exchange_lab_schema()`, written by hand) is the schema the AD connector
//! reads from the lab DC: every attribute it lists exists on the DC with the same name,
//! syntax, single-valuedness and range limits. A fixture that drifted from the DC would let
//! those tests plan values the DC refuses (or refuse values it takes).

use exo_writeback_core::schema::exchange_lab_schema;
use exo_writeback_testlab::LabDc;

use crate::connect;

#[tokio::test]
async fn the_in_memory_lab_schema_is_the_schema_read_from_the_lab_dc() {
    let dc = LabDc::shared();
    let conn = connect(dc).await;
    let read = conn.schema().await.expect("schema");
    let fixture = exchange_lab_schema();
    assert!(fixture.len() >= 40, "{} attributes", fixture.len());
    let mut differences = Vec::new();
    for want in fixture.iter() {
        let name = &want.ldap_display_name;
        let Some(got) = read.get(name) else {
            differences.push(format!("{name}: not in the DC's schema"));
            continue;
        };
        let pairs = [
            (
                "lDAPDisplayName",
                name.clone(),
                got.ldap_display_name.clone(),
            ),
            (
                "syntax",
                format!("{:?}", want.syntax),
                format!("{:?}", got.syntax),
            ),
            (
                "isSingleValued",
                want.single_valued.to_string(),
                got.single_valued.to_string(),
            ),
            (
                "rangeLower",
                format!("{:?}", want.range_lower),
                format!("{:?}", got.range_lower),
            ),
            (
                "rangeUpper",
                format!("{:?}", want.range_upper),
                format!("{:?}", got.range_upper),
            ),
        ];
        for (what, fixture, dc) in pairs {
            if fixture != dc {
                differences.push(format!("{name}: {what} is {fixture} here, {dc} on the DC"));
            }
        }
    }
    assert!(
        differences.is_empty(),
        "core::schema::exchange_lab_schema() differs from the lab DC's schema:\n{}",
        differences.join("\n")
    );
}
