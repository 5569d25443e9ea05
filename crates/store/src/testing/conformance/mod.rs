//! The test bodies every backend passes, by role. Each takes the [`Backend`] under test.
//!
//! [`Backend`]: crate::testing::Backend

mod copy;
mod cycles;
mod decisions;
mod escrow;
mod intents;
mod journal;
mod logs;
mod outcomes;
mod schema_cache;
mod staged;

pub use copy::*;
pub use cycles::*;
pub use decisions::*;
pub use escrow::*;
pub use intents::*;
pub use journal::*;
pub use logs::*;
pub use outcomes::*;
pub use schema_cache::*;
pub use staged::*;
