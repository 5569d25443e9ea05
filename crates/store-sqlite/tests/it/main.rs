//! Integration tests of the SQLite state store (one test binary).

mod common;
mod crash;
mod cycles;
mod decisions;
mod escrow;
mod intents;
mod journal;
mod logs;
mod migrations;
mod outcomes;
mod staged;
