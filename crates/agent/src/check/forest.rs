//! The forest part of `check`: its domains (from the partitions), the DC that serves each —
//! a writable one, as the agent writes there — whether it is read-only or a global catalog,
//! the DCs passed over, and the global catalog used for forest-wide look-ups. A domain without
//! a reachable DC fails the check: objects of that domain could not be read or written.

use exo_writeback_ad::domain::DcStatus;
use exo_writeback_ad::forest_directory::ForestDirectory;
use serde::Serialize;

/// One domain's (or the global catalog's) DC.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct DcReport {
    pub domain: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dc: Option<String>,
    /// How it was found (configured, DNS SRV …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub read_only: bool,
    pub global_catalog: bool,
    /// DCs passed over, and why.
    pub skipped: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl DcReport {
    fn of(status: DcStatus) -> DcReport {
        DcReport {
            domain: status.domain,
            dc: Some(status.dc),
            source: Some(status.source.to_string()),
            read_only: status.read_only,
            global_catalog: status.global_catalog,
            skipped: status
                .skipped
                .into_iter()
                .map(|(dc, why)| format!("{dc}: {why}"))
                .collect(),
            error: None,
        }
    }

    fn failed(domain: &str, error: String) -> DcReport {
        DcReport {
            domain: domain.to_string(),
            dc: None,
            source: None,
            read_only: false,
            global_catalog: false,
            skipped: Vec::new(),
            error: Some(error),
        }
    }

    /// `dc1.corp.example (configured; writable, global catalog)` or the error.
    pub fn line(&self) -> String {
        match (&self.dc, &self.error) {
            (_, Some(e)) => format!("FAILED: {e}"),
            (Some(dc), None) => {
                let mut kinds = vec![if self.read_only {
                    "read-only"
                } else {
                    "writable"
                }];
                if self.global_catalog {
                    kinds.push("global catalog");
                }
                format!(
                    "{dc} ({}; {})",
                    self.source.as_deref().unwrap_or("-"),
                    kinds.join(", ")
                )
            }
            (None, None) => "-".into(),
        }
    }
}

/// The forest as `check` reports it.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ForestReport {
    /// One line per domain (the forest root first).
    pub domains: Vec<String>,
    /// The DC serving each domain.
    pub domain_controllers: Vec<DcReport>,
    /// The global catalog (only looked for when the forest has several domains).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global_catalog: Option<DcReport>,
}

impl ForestReport {
    pub fn ok(&self) -> bool {
        self.domain_controllers.iter().all(|d| d.error.is_none())
            && self
                .global_catalog
                .as_ref()
                .is_none_or(|g| g.error.is_none())
    }
}

/// Connects to a DC of every domain of the forest (and the GC when there are several).
pub(super) async fn examine(forest: &ForestDirectory) -> ForestReport {
    let mut domain_controllers = Vec::new();
    for domain in &forest.forest().domains {
        domain_controllers.push(match forest.domain(domain).await {
            Ok(conn) => DcReport::of(conn.status().await),
            Err(e) => DcReport::failed(&domain.dns_name, e.to_string()),
        });
    }
    let global_catalog = if forest.forest().domains.len() > 1 {
        Some(match forest.global_catalog().await {
            Ok(gc) => DcReport::of(gc.status().await),
            Err(e) => DcReport::failed("global catalog", e.to_string()),
        })
    } else {
        None
    };
    ForestReport {
        domains: forest.forest().describe(),
        domain_controllers,
        global_catalog,
    }
}
