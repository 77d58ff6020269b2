//! The user service: profiles and argon2id credentials over gRPC, stored in
//! PostgreSQL or SQLite. A library, so that the launcher and the tests run
//! the real server in-process; `main.rs` is a thin shell around [`serve`].
#![forbid(unsafe_code)]

pub mod cache;
pub mod coalesce;
pub mod config;
/// The rules (the core): what each call does, in domain types.
pub mod core;
pub mod domain;
pub mod error;
pub mod factors;
/// The gRPC adapter: requests to the core's input, its answers to responses.
pub mod grpc;
pub mod hashing;
pub mod imported_hash;
/// Outgoing mail: letters, link tokens, the mail outbox and the mailer.
pub mod mail;
pub mod metrics;
pub mod password;
/// The process: assembling the core, the adapter and the server runtime.
pub mod startup;
pub mod store;
pub mod throttle;

pub use config::Config;
pub use error::Error;
pub use error::StartError;
pub use startup::{UserBinary, serve};

/// Locks `m` whatever a panicking holder left: the maps it guards here hold
/// plain values that a panic cannot leave half-written.
pub(crate) fn lock_ignoring_poison<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
