//! Integration tests of the Exchange Online connector: the real captures, and the client
//! against the `exo-sim` emulator.

mod assertion;
mod certificates;
mod certs;
mod clouds;
mod filters;
mod fixtures;
mod page_errors;
mod plain_http;
mod recipients;
mod resilience;
mod robustness;
mod routing;
mod sim;
mod support;
mod wire_http;
