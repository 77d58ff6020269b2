//! The suite's protobuf contract, compiled at build time (no system `protoc`).
#![forbid(unsafe_code)]
#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// The encoded `FileDescriptorSet` of every .proto in the contract, for gRPC
/// server reflection and descriptor-driven tools.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptor.bin"));

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

pub mod codec;

pub use suite::auth::v1 as auth;
pub use suite::user::v1 as user;

/// The normal form of a `login` field (`LoginRequest.login`,
/// `VerifyCredentialsRequest.login`): trimmed and lower-cased. Usernames and
/// emails are stored in this form, so the user service looks a login up by
/// it and the auth service counts failed logins under it: one rule, or the
/// throttle and the lookup would disagree about who "Alice " is.
pub fn canonical_login(login: &str) -> String {
    login.trim().to_lowercase()
}

/// The longest login name looked at (the longest valid email address):
/// longer ones are refused before anything is stored or hashed.
pub const MAX_LOGIN_CHARS: usize = 254;

#[cfg(test)]
mod tests {
    #[test]
    fn a_login_is_trimmed_and_lower_cased() {
        assert_eq!(
            super::canonical_login(" Alice@Example.COM\t"),
            "alice@example.com"
        );
    }
}
