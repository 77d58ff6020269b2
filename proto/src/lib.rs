//! The suite's protobuf contract, compiled at build time (no system `protoc`),
//! and the few rules both services read the same way: what a login name and
//! a password are ([`credentials`]), and how instants travel ([`time`]).
#![forbid(unsafe_code)]

/// The encoded `FileDescriptorSet` of every .proto in the contract, for gRPC
/// server reflection and descriptor-driven tools.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptor.bin"));

/// The generated code, whose lints are prost's and tonic's business.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
mod generated {
    pub mod google {
        pub mod api {
            tonic::include_proto!("google.api");
        }
    }

    pub mod suite {
        pub mod api {
            pub mod v1 {
                tonic::include_proto!("suite.api.v1");
            }
        }
        pub mod auth {
            pub mod v1 {
                tonic::include_proto!("suite.auth.v1");
            }
        }
        pub mod user {
            pub mod v1 {
                tonic::include_proto!("suite.user.v1");
            }
        }
    }
}

pub mod access;
pub mod codec;
pub mod credentials;
mod redacted;
pub mod time;

pub use credentials::{Login, MAX_LOGIN_CHARS, Password, canonical_login, parse_credentials};
pub use generated::{google, suite};
pub use suite::auth::v1 as auth;
pub use suite::user::v1 as user;
