//! Plans beyond `max_plans_in_memory`, kept in an anonymous temporary file until the change
//! threshold is decided (a held cycle writes nothing, so every plan waits for the decision).
//! Memory stays bounded and the objects are neither read from Exchange Online nor matched
//! and planned a second time: the cycle writes exactly what it planned, as it does for the
//! plans it kept in memory.
//!
//! One JSON line per object (the staged form of the plan plus the log steps and the join);
//! the file is unlinked when created (`tempfile::tempfile_in` the agent's state directory, or
//! `tempfile::tempfile` in `TMPDIR`), so it disappears with the process whatever happens. Size: about 2.4 KB per object (measured at 600,000).

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use exo_writeback_core::plan::{ObjectPlan, PropertyChange};
use exo_writeback_core::provisioning::{Join, JoinUpdate, PinCheck, Reason, Steps};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::evaluate::{Disposition, Processed};
use crate::staged::StagedObject;

#[derive(Serialize, Deserialize)]
enum SpilledJoin {
    Keep,
    Set(Join),
    Remove(String),
}

impl SpilledJoin {
    fn of(j: &JoinUpdate) -> SpilledJoin {
        match j {
            JoinUpdate::Keep => SpilledJoin::Keep,
            JoinUpdate::Set(j) => SpilledJoin::Set(j.clone()),
            JoinUpdate::Remove { cloud_id } => SpilledJoin::Remove(cloud_id.clone()),
        }
    }

    fn into_update(self) -> JoinUpdate {
        match self {
            SpilledJoin::Keep => JoinUpdate::Keep,
            SpilledJoin::Set(j) => JoinUpdate::Set(j),
            SpilledJoin::Remove(cloud_id) => JoinUpdate::Remove { cloud_id },
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Spilled {
    object: StagedObject,
    when_changed: Option<Timestamp>,
    started: Timestamp,
    steps: Steps,
    join: SpilledJoin,
    /// The object's pins (kept and released), for its log entry.
    #[serde(default)]
    pins: PinCheck,
    join_if_failed: SpilledJoin,
    security: Option<Reason>,
    advisory: Option<Reason>,
    #[serde(default)]
    drift: Option<Reason>,
}

/// The spill file of one cycle.
pub(crate) struct Spill {
    file: BufWriter<File>,
    count: u64,
    /// The directory it lives in (for error messages).
    dir: PathBuf,
}

fn io(what: &str, dir: &Path, e: impl std::fmt::Display) -> String {
    format!(
        "{what} the temporary file for plans beyond max_plans_in_memory (in {}): {e}",
        dir.display()
    )
}

impl Spill {
    /// A new spill file in `dir` (the agent's state directory), or in `TMPDIR`.
    pub(crate) fn new(dir: Option<&Path>) -> Result<Spill, String> {
        let tmp = std::env::temp_dir();
        let dir = dir.unwrap_or(&tmp);
        let file = tempfile::tempfile_in(dir).map_err(|e| io("creating", dir, e))?;
        Ok(Spill {
            file: BufWriter::new(file),
            count: 0,
            dir: dir.to_path_buf(),
        })
    }

    pub(crate) fn len(&self) -> u64 {
        self.count
    }

    /// Keep one object to write (`Disposition::Write` with a modify; others are refused).
    pub(crate) fn push(&mut self, p: &Processed) -> Result<(), String> {
        let object = StagedObject::of(p).ok_or("only planned writes are spilled")?;
        let record = Spilled {
            object,
            when_changed: p.when_changed,
            started: p.started,
            steps: p.steps.clone(),
            join: SpilledJoin::of(&p.join),
            pins: p.pins.clone(),
            join_if_failed: SpilledJoin::of(&p.join_if_failed),
            security: p.security.clone().map(Reason::from),
            advisory: p.advisory.clone().map(Reason::from),
            drift: p.drift.clone().map(Reason::from),
        };
        serde_json::to_writer(&mut self.file, &record).map_err(|e| io("writing", &self.dir, e))?;
        self.file
            .write_all(b"\n")
            .map_err(|e| io("writing", &self.dir, e))?;
        self.count += 1;
        Ok(())
    }

    /// Read the objects back, in the order they were kept.
    pub(crate) fn read(self) -> Result<SpillReader, String> {
        let dir = self.dir;
        let mut file = self.file.into_inner().map_err(|e| io("writing", &dir, e))?;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| io("rewinding", &dir, e))?;
        Ok(SpillReader {
            lines: BufReader::new(file),
            line: String::new(),
            dir,
        })
    }
}

pub(crate) struct SpillReader {
    lines: BufReader<File>,
    line: String,
    dir: PathBuf,
}

impl SpillReader {
    /// The next kept object as the write phase needs it, and its staged form.
    pub(crate) fn next_object(&mut self) -> Result<Option<(Processed, StagedObject)>, String> {
        self.line.clear();
        let n = self
            .lines
            .read_line(&mut self.line)
            .map_err(|e| io("reading", &self.dir, e))?;
        if n == 0 {
            return Ok(None);
        }
        let r: Spilled =
            serde_json::from_str(&self.line).map_err(|e| io("reading", &self.dir, e))?;
        let modify = r.object.modify();
        let plan = ObjectPlan {
            dn: r.object.dn.clone(),
            modify: Some(modify),
            changes: r
                .object
                .modified
                .iter()
                .map(|m| PropertyChange {
                    attribute: m.attribute.clone(),
                    old: m.old.clone(),
                    new: m.new.clone(),
                })
                .collect(),
            removes_values: r.object.removes_values,
            // Checked by the address guard before the plan was kept.
            added_smtp_addresses: Vec::new(),
            // Kept in the Processed (`advisory`).
            warnings: Vec::new(),
        };
        let p = Processed {
            cloud_id: r.object.cloud_id.clone(),
            when_changed: r.when_changed,
            started: r.started,
            source: r.object.source.clone(),
            target: r.object.target.clone(),
            steps: r.steps,
            join: r.join.into_update(),
            join_if_failed: r.join_if_failed.into_update(),
            security: r.security.map(Into::into),
            advisory: r.advisory.map(Into::into),
            drift: r.drift.map(Into::into),
            disposition: Disposition::Write {
                plan,
                object_guid: r.object.object_guid,
            },
            pins: r.pins,
        };
        Ok(Some((p, r.object)))
    }
}
