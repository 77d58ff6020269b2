//! Integration tests of the auth service with the real user service: both on
//! ephemeral ports, over real gRPC, each on a fresh SQLite or PostgreSQL database.
// The test binary's helpers fail their test loudly too (clippy.toml lets
// #[test] functions do so, and clippy 1.95 does not see these as tests).
#![allow(clippy::expect_used, clippy::panic)]

mod helpers;

mod attacks;
mod backchannel;
mod clients;
mod device;
mod forget;
mod keys;
mod login;
mod oauth;
mod oauth_steps;
mod refresh;
mod registration;
mod sessions;
mod startup;
