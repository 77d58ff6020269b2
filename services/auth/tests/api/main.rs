//! Integration tests of the auth service with the real user service: both on
//! ephemeral ports, over real gRPC, each on a fresh SQLite or PostgreSQL database.

mod helpers;

mod keys;
mod login;
mod refresh;
mod sessions;
mod startup;
