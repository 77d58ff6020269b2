//! Whole-suite tests: the launcher's services and gateway in-process, used
//! over real gRPC and real HTTP.

mod balance;
mod ctl;
mod events;
mod grpc;
mod helpers;
mod openapi;
mod rest;
mod shared_limits;
mod sse;
mod streams;
