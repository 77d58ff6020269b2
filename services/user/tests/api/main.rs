//! Integration tests of the user service: the real server on an ephemeral
//! port, the generated tonic client, a fresh SQLite and PostgreSQL database each.
// The test binary's helpers fail their test loudly too (clippy.toml lets
// #[test] functions do so, and clippy 1.95 does not see these as tests).
#![allow(clippy::expect_used, clippy::panic)]

mod helpers;

mod authorization;
mod cache;
mod credentials;
mod crud;
mod events;
mod faults;
mod floor;
mod imported;
mod mail;
mod pagination;
mod scopes;
mod server;
mod validation;
