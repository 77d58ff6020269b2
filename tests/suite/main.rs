//! Whole-suite tests: the launcher's services and gateway in-process, used
//! over real gRPC and real HTTP.
// The test binary's helpers fail their test loudly too (clippy.toml lets
// #[test] functions do so, and clippy 1.95 does not see these as tests).
#![allow(clippy::expect_used, clippy::panic)]

mod account_pages;
mod account_security;
mod balance;
mod ctl;
mod events;
mod factors;
mod grpc;
mod helpers;
mod oidc;
mod oidc_browser;
mod oidc_device;
mod oidc_factors;
mod openapi;
mod passkeys;
mod pat;
mod rest;
mod shared_limits;
mod sse;
mod streams;
