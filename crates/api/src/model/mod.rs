//! The API's shapes (JSON, camelCase), each made from the agent's own types.

pub mod cycle;
pub mod log;
pub mod ops;
pub mod status;
