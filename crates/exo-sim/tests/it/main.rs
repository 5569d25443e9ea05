//! Integration tests: the emulator over real HTTP.

mod common;
mod control_recipients;
mod faults;
mod get_mailbox;
mod groups;
mod large_group;
mod process;
mod routing;
mod scale;
mod seed_from_ad;
mod seeding;
mod set_mailbox;
mod token;
