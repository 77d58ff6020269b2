//! What the suite's tests share (a dev-dependency, never linked by a
//! binary): a fresh database per test and [`on_both_databases!`] ([`db`]),
//! a service on a task of its own ([`server`]), NATS and Redis servers of
//! the test's own ([`child`]) and a slow, freezable link to one
//! ([`slow_link`]), an OTLP collector ([`otlp`]), an SMTP sink ([`smtp`]), HTTP/1.1 on a connection of its own
//! ([`http`]) and a Server-Sent Events client ([`sse`]), configurations that ignore
//! the developer's environment ([`hermetic()`]), and [`eventually`], the
//! one bounded wait on a condition.
#![forbid(unsafe_code)]
// Test support fails the test that uses it by panicking: a server that does
// not start or a database that cannot be created leaves nothing to test.
#![allow(clippy::expect_used, clippy::panic)]

pub mod child;
pub mod db;
pub mod http;
pub mod otlp;
pub mod server;
pub mod slow_link;
pub mod smtp;
pub mod sse;
mod wait;

pub use child::{ChildServer, NatsServer, RedisServer};
pub use db::{Backend, PrivatePostgres, TestDb};
pub use server::{Server, Shutdown};
pub use slow_link::SlowLink;
pub use smtp::{SmtpSink, temp_mail_dir};
/// For [`with_pool!`]: the same sqlx as the test's.
pub use sqlx;
pub use wait::eventually;

/// A binary's configuration as `cargo run` with an empty environment has
/// it: a developer's `NATS_URL`, `REDIS_URL` or `PASSWORD_MIN_SCORE` must
/// not change what a test exercises. Tests set what they need on it.
pub fn hermetic<C: clap::Args + clap::FromArgMatches>() -> C {
    suite_grpc::config::defaults_ignoring_env().expect("the defaults of every setting parse")
}
