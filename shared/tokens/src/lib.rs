//! Access tokens: the claims we issue ([`claims`]), the strict rules a token
//! must meet ([`rules`]), the trusted public keys and where they come from
//! ([`keys`], [`jwks`]), the transport-neutral verifier ([`verifier`]) and
//! its gRPC adapter ([`grpc`]). Private keys and signing are the auth
//! service's alone, behind the `signing` feature ([`signing`]).
#![forbid(unsafe_code)]

pub mod claims;
pub mod config;
pub mod grpc;
pub mod jwks;
pub mod keys;
pub mod pat;
pub mod revocations;
pub mod rules;
#[cfg(feature = "signing")]
pub mod signing;
pub mod verifier;

pub use claims::{Audience, Claims, TokenError, roles};
pub use keys::{KeyError, KeySet};
pub use revocations::Revocations;
pub use rules::TokenRules;
#[cfg(feature = "signing")]
pub use signing::{IdTokenAlg, IdTokenKey, SigningKey, jwks_of, public_jwk_from_pem};
pub use suite_proto::access::MethodAccess;
pub use verifier::{
    ADMIN_SCOPE, Caller, Delegation, Exchange, Grantee, Lasting, Refusal, UserCaller, Verifier,
    scope_list,
};
