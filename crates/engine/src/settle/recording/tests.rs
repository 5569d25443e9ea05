//! `Recording`: every outcome comes back once, recorded or not; a recorder that fails leaves
//! that chunk and every later one to the read phase; without a recorder nothing is recorded.

use std::sync::{Arc, Mutex};

use exo_writeback_core::provisioning::{CycleId, LogEntryId, ObjectOutcome};
use exo_writeback_store::testing::fixtures::{at, failed};
use exo_writeback_store::{LogRecorder, StoreError};
use uuid::Uuid;

use super::{CHUNK, Recording};

/// What the fake recorder was given: the chunks it stored, and whether it finished.
#[derive(Default)]
struct Seen {
    chunks: Vec<Vec<Uuid>>,
    finished: bool,
}

/// Stores every chunk, except the `fail_at`-th (1-based) and, as a real store would after a
/// failure, nothing after it is asked of it by `Recording`.
struct Fake {
    seen: Arc<Mutex<Seen>>,
    fail_at: Option<usize>,
}

impl LogRecorder for Fake {
    fn record(&mut self, outcomes: &[ObjectOutcome]) -> exo_writeback_store::Result<()> {
        let mut seen = self.seen.lock().expect("lock");
        if self.fail_at == Some(seen.chunks.len() + 1) {
            seen.chunks.push(Vec::new());
            return Err(StoreError::Invalid {
                path: "state.db".into(),
                message: "disk full".into(),
            });
        }
        seen.chunks
            .push(outcomes.iter().map(|o| o.log.id.0).collect());
        Ok(())
    }
    fn finish(self: Box<Self>) -> exo_writeback_store::Result<()> {
        self.seen.lock().expect("lock").finished = true;
        Ok(())
    }
}

fn outcome(n: u128) -> ObjectOutcome {
    let mut o = failed(CycleId(1), n as u64, at(0));
    o.log.id = LogEntryId(Uuid::from_u128(n));
    o
}

/// `n` outcomes pushed to a recording with `fail_at`; the settled map and what the recorder saw.
async fn record(
    n: u128,
    recorder: Option<usize>,
) -> (
    std::collections::HashMap<String, super::Settled>,
    Arc<Mutex<Seen>>,
) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let fake = recorder.map(|fail_at| {
        Box::new(Fake {
            seen: seen.clone(),
            fail_at: (fail_at > 0).then_some(fail_at),
        }) as Box<dyn LogRecorder>
    });
    let mut recording = Recording::start(fake);
    for i in 1..=n {
        recording.push(format!("id-{i}"), outcome(i));
    }
    (recording.finish().await, seen)
}

#[tokio::test]
async fn every_outcome_is_recorded_once_in_chunks_then_finished() {
    let n = (CHUNK * 2 + 7) as u128;
    let (settled, seen) = record(n, Some(0)).await;
    assert_eq!(settled.len(), n as usize);
    assert!(settled.values().all(|s| s.recorded));
    for i in 1..=n {
        assert_eq!(
            settled[&format!("id-{i}")].outcome.log.id.0,
            Uuid::from_u128(i)
        );
    }
    let seen = seen.lock().expect("lock");
    assert_eq!(
        seen.chunks.iter().map(Vec::len).collect::<Vec<_>>(),
        [CHUNK, CHUNK, 7]
    );
    let order: Vec<Uuid> = seen.chunks.concat();
    assert_eq!(order, (1..=n).map(Uuid::from_u128).collect::<Vec<_>>());
    assert!(seen.finished);
}

#[tokio::test]
async fn a_failed_chunk_and_every_later_one_are_left_to_the_read_phase() {
    let n = (CHUNK * 3) as u128;
    let (settled, seen) = record(n, Some(2)).await;
    assert_eq!(settled.len(), n as usize, "nothing lost");
    for i in 1..=n {
        let recorded = settled[&format!("id-{i}")].recorded;
        assert_eq!(recorded, i <= CHUNK as u128, "outcome {i}");
    }
    let seen = seen.lock().expect("lock");
    assert_eq!(seen.chunks.len(), 2, "nothing asked after the failure");
    assert!(!seen.finished);
}

#[tokio::test]
async fn without_a_recorder_every_outcome_waits_for_the_read_phase() {
    let (settled, _) = record(3, None).await;
    assert_eq!(settled.len(), 3);
    assert!(settled.values().all(|s| !s.recorded));
}
