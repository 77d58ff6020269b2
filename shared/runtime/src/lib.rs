//! The process around every binary of the suite, whatever it serves: its
//! `main` ([`runner`]), the readiness a server waits for ([`readiness`]), the
//! stop signal ([`shutdown`]), binding a listener ([`listen`]), private
//! files ([`files`]), periodic deletes ([`prune`]), the
//! operators' admin HTTP server (`admin`, feature `admin`: `/metrics`,
//! `/livez`) and the `healthcheck` probes ([`probe`]: gRPC health, HTTP
//! `GET`).
#![forbid(unsafe_code)]

#[cfg(feature = "admin")]
pub mod admin;
pub mod files;
pub mod listen;
pub mod probe;
pub mod prune;
pub mod readiness;
pub mod runner;
pub mod shutdown;
