//! Plans beyond `max_plans_in_memory`, kept in an anonymous temporary file until the change
//! threshold is decided (a held cycle writes nothing, so every plan waits for the decision).
//! Memory stays bounded and the objects are neither read from Exchange Online nor matched
//! and planned a second time: the cycle writes exactly what it planned, as it does for the
//! plans it kept in memory.
//!
//! One JSON line per object (the staged form of the plan plus the log steps and the join),
//! the lines gathered in blocks of about [`BLOCK`] bytes, each block deflated (zlib, the fast
//! level) behind a header: the block's JSON length, its deflated length and its number of
//! objects (3 × u32, little-endian). Reading checks each block whole — its zlib checksum
//! (Adler-32 of the JSON), both lengths, its count of lines — and at the end the count of
//! objects kept: a corrupt or short file is an error naming its directory, never a plan
//! dropped. The file is unlinked when created (`tempfile::tempfile_in` the agent's state
//! directory, or `tempfile::tempfile` in `TMPDIR`), so it disappears with the process whatever
//! happens. Size: about 0.33 KB per object (2.5 KB as plain JSON lines), measured at
//! 1,000,000 in the `scale` benchmark (320.8 MB for its 980,000 plans beyond the bound).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use exo_writeback_core::plan::{ObjectPlan, PropertyChange};
use exo_writeback_core::provisioning::{Join, JoinUpdate, PinCheck, Reason, Steps};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::evaluate::{Disposition, Processed};
use crate::staged::StagedObject;

/// The JSON gathered before a block is deflated and written (the deflate window is 32 KiB, so
/// larger blocks pack little better; each block resets the compressor's tables).
pub(crate) const BLOCK: usize = 256 * 1024;

/// A block's header: its JSON length, its deflated length, its number of objects.
const HEADER: usize = 12;

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

impl Spilled {
    fn of(p: &Processed) -> Result<Spilled, String> {
        let object = StagedObject::of(p).ok_or("only planned writes are spilled")?;
        Ok(Spilled {
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
        })
    }
}

/// The spill file of one cycle.
pub(crate) struct Spill {
    file: File,
    /// The JSON lines of the block being gathered, and how many.
    block: Vec<u8>,
    in_block: u32,
    /// A block's header and deflated bytes, as written.
    packed: Vec<u8>,
    deflate: Compress,
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

fn u32_of(n: usize) -> Result<u32, String> {
    u32::try_from(n).map_err(|_| format!("a block of {n} bytes (at most 4 GiB)"))
}

impl Spill {
    /// A new spill file in `dir` (the agent's state directory), or in `TMPDIR`.
    pub(crate) fn new(dir: Option<&Path>) -> Result<Spill, String> {
        let tmp = std::env::temp_dir();
        let dir = dir.unwrap_or(&tmp);
        let file = tempfile::tempfile_in(dir).map_err(|e| io("creating", dir, e))?;
        Ok(Spill {
            file,
            block: Vec::with_capacity(BLOCK + BLOCK / 8),
            in_block: 0,
            packed: Vec::new(),
            deflate: Compress::new(Compression::fast(), true),
            count: 0,
            dir: dir.to_path_buf(),
        })
    }

    pub(crate) fn len(&self) -> u64 {
        self.count
    }

    /// Keep one object to write (`Disposition::Write` with a modify; others are refused).
    pub(crate) fn push(&mut self, p: &Processed) -> Result<(), String> {
        let record = Spilled::of(p)?;
        serde_json::to_writer(&mut self.block, &record).map_err(|e| io("writing", &self.dir, e))?;
        self.block.push(b'\n');
        self.in_block += 1;
        self.count += 1;
        if self.block.len() >= BLOCK {
            self.write_block()?;
        }
        Ok(())
    }

    /// Deflate the gathered lines and write them as one block.
    fn write_block(&mut self) -> Result<(), String> {
        if self.in_block == 0 {
            return Ok(());
        }
        let (dir, z, block) = (&self.dir, &mut self.deflate, &self.block);
        let raw = u32_of(block.len()).map_err(|e| io("writing", dir, e))?;
        self.packed.clear();
        self.packed.extend_from_slice(&[0; HEADER]);
        self.packed.reserve(block.len() / 4 + 64);
        z.reset();
        loop {
            let done = usize::try_from(z.total_in()).unwrap_or(usize::MAX);
            let rest = block.get(done..).unwrap_or_default();
            match z
                .compress_vec(rest, &mut self.packed, FlushCompress::Finish)
                .map_err(|e| io("writing", dir, e))?
            {
                Status::StreamEnd => break,
                // Out of room: more, and go on where it stopped.
                Status::Ok | Status::BufError => self.packed.reserve(self.packed.capacity()),
            }
        }
        let packed = u32_of(self.packed.len() - HEADER).map_err(|e| io("writing", dir, e))?;
        self.packed[0..4].copy_from_slice(&raw.to_le_bytes());
        self.packed[4..8].copy_from_slice(&packed.to_le_bytes());
        self.packed[8..12].copy_from_slice(&self.in_block.to_le_bytes());
        self.file
            .write_all(&self.packed)
            .map_err(|e| io("writing", dir, e))?;
        self.block.clear();
        self.in_block = 0;
        Ok(())
    }

    /// Read the objects back, in the order they were kept.
    pub(crate) fn read(mut self) -> Result<SpillReader, String> {
        self.write_block()?;
        let dir = self.dir;
        let mut file = self.file;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| io("rewinding", &dir, e))?;
        Ok(SpillReader {
            file,
            packed: Vec::new(),
            block: Vec::new(),
            at: 0,
            left: 0,
            blocks: 0,
            read: 0,
            kept: self.count,
            inflate: Decompress::new(true),
            dir,
        })
    }
}

pub(crate) struct SpillReader {
    file: File,
    packed: Vec<u8>,
    /// The current block's JSON lines, where the next one starts, and how many are left.
    block: Vec<u8>,
    at: usize,
    left: u32,
    /// Blocks and objects read so far, and the objects kept.
    blocks: u64,
    read: u64,
    kept: u64,
    inflate: Decompress,
    dir: PathBuf,
}

/// Fill `buf` from `file` as far as it goes: the number of bytes read (short only at the end).
fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl SpillReader {
    fn corrupt(&self, what: impl std::fmt::Display) -> String {
        io(
            "reading",
            &self.dir,
            format_args!("block {} is corrupt: {what}", self.blocks),
        )
    }

    /// The next block into `block`; `false` at the end of the file.
    fn next_block(&mut self) -> Result<bool, String> {
        let mut header = [0u8; HEADER];
        let n = read_up_to(&mut self.file, &mut header).map_err(|e| io("reading", &self.dir, e))?;
        if n == 0 {
            return Ok(false);
        }
        self.blocks += 1;
        if n < HEADER {
            return Err(self.corrupt(format_args!("the file ends in its header ({n} bytes)")));
        }
        let field =
            |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
        let (raw, packed, lines) = (field(0) as usize, field(4) as usize, field(8));
        self.packed.resize(packed, 0);
        let got = read_up_to(&mut self.file, &mut self.packed)
            .map_err(|e| io("reading", &self.dir, e))?;
        if got < packed {
            return Err(self.corrupt(format_args!(
                "the file ends after {got} of its {packed} bytes"
            )));
        }
        self.block.clear();
        self.block.reserve_exact(raw);
        self.inflate.reset(true);
        let status = self
            .inflate
            .decompress_vec(&self.packed, &mut self.block, FlushDecompress::Finish)
            .map_err(|e| self.corrupt(e))?;
        let used = self.inflate.total_in();
        if status != Status::StreamEnd || used != packed as u64 || self.block.len() != raw {
            return Err(self.corrupt(format_args!(
                "{used} of {packed} bytes inflated to {} bytes of {raw} ({status:?})",
                self.block.len()
            )));
        }
        (self.at, self.left) = (0, lines);
        Ok(true)
    }

    /// The next kept object as the write phase needs it, and its staged form.
    pub(crate) fn next_object(&mut self) -> Result<Option<(Processed, StagedObject)>, String> {
        while self.left == 0 {
            if self.at != self.block.len() {
                return Err(self.corrupt("more lines than its count"));
            }
            if !self.next_block()? {
                if self.read != self.kept {
                    return Err(io(
                        "reading",
                        &self.dir,
                        format_args!(
                            "it ends after {} of the {} plans kept",
                            self.read, self.kept
                        ),
                    ));
                }
                return Ok(None);
            }
        }
        let rest = &self.block[self.at..];
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            return Err(self.corrupt("fewer lines than its count"));
        };
        let r: Spilled = serde_json::from_slice(&rest[..end]).map_err(|e| self.corrupt(e))?;
        self.at += end + 1;
        self.left -= 1;
        self.read += 1;
        if self.read > self.kept {
            return Err(io(
                "reading",
                &self.dir,
                format_args!("more than the {} plans kept", self.kept),
            ));
        }
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
            added_other_proxies: Vec::new(),
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

#[cfg(test)]
mod tests;
