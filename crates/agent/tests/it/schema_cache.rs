//! Each `exo-writeback sync` is a process of its own: the directory it builds adopts the AD
//! schema an earlier process kept in the state, so its first refresh reads only the schema NC
//! head's `schemaInfo`, not the attributeSchema objects.

use std::path::Path;

use exo_writeback_agent::compose::directory_on;
use exo_writeback_agent::config::Config;
use exo_writeback_agent::state::State;
use exo_writeback_engine::Directory;
use exo_writeback_testlab::LabDc;

fn config(dc: &LabDc, state_dir: &Path) -> Config {
    let ad = std::fs::read_to_string(&dc.config_file).expect("the lab DC's [ad] section");
    let text = format!("{ad}\n[sync]\nstate_dir = \"{}\"\n", state_dir.display());
    Config::parse(&text, Path::new("test.toml")).expect("config")
}

/// The searches the directory's home connection sent on its side connection (where the
/// schema is read).
async fn schema_searches(directory: &exo_writeback_agent::ad::AdDirectory) -> u64 {
    let home = directory.forest().home().connection().await;
    home.side().stats().search_requests
}

#[tokio::test]
async fn the_next_process_does_not_read_the_schema_again() {
    let dc = LabDc::shared();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dc, dir.path());

    // The first process: the whole schema read, and kept in the state.
    let first = directory_on(&config, &State::sqlite(dir.path().to_path_buf()))
        .await
        .expect("the directory");
    let schema = first.refresh_schema().await.expect("the schema");
    assert!(schema.len() > 1000);
    assert!(
        schema_searches(&first).await > 1,
        "schemaInfo, then the attributeSchema objects"
    );
    drop(first);

    // The next process: the kept schema adopted; its cycle's refresh checks schemaInfo alone.
    let next = directory_on(&config, &State::sqlite(dir.path().to_path_buf()))
        .await
        .expect("the directory");
    let refreshed = next.refresh_schema().await.expect("the schema");
    assert_eq!(
        schema_searches(&next).await,
        1,
        "one base-object search of the schema NC head"
    );
    assert_eq!(refreshed.len(), schema.len());
    assert_eq!(refreshed.schema_info(), schema.schema_info());
    assert_eq!(refreshed.get("mail"), schema.get("mail"));
}
