//! Integration tests of the user service: the real server on an ephemeral
//! port, the generated tonic client, a fresh SQLite and PostgreSQL database each.

mod helpers;

mod authorization;
mod cache;
mod credentials;
mod crud;
mod events;
mod faults;
mod floor;
mod imported;
mod pagination;
mod server;
mod validation;
