//! The verifier on gRPC: a call's `authorization` metadata to a caller,
//! token errors to Unauthenticated (expired or invalid, no more).

use crate::{
    claims::TokenError,
    verifier::{Caller, Verifier, bearer_token},
};
use tonic::{Status, metadata::MetadataMap};

/// The one mapping of token errors to the wire.
pub fn token_status(e: &TokenError) -> Status {
    match e {
        TokenError::Expired => Status::unauthenticated("access token expired"),
        TokenError::Revoked => Status::unauthenticated("access token revoked"),
        TokenError::Invalid(_) | TokenError::Rejected(_) => {
            Status::unauthenticated("invalid access token")
        }
    }
}

/// The caller of a call: `None` without an `authorization` entry, an
/// Unauthenticated status if one is there but not a valid bearer token.
pub async fn caller(verifier: &Verifier, metadata: &MetadataMap) -> Result<Option<Caller>, Status> {
    let Some(value) = metadata.get("authorization") else {
        return Ok(None);
    };
    let token =
        value.to_str().ok().and_then(bearer_token).ok_or_else(|| {
            Status::unauthenticated("authorization must be `Bearer <access token>`")
        })?;
    match verifier.caller(token).await {
        Ok(caller) => Ok(Some(caller)),
        Err(e) => {
            tracing::debug!(error = %e, "token refused");
            Err(token_status(&e))
        }
    }
}

/// Like [`caller`], but a missing token is Unauthenticated too.
pub async fn require_caller(verifier: &Verifier, metadata: &MetadataMap) -> Result<Caller, Status> {
    caller(verifier, metadata)
        .await?
        .ok_or_else(|| Status::unauthenticated("this call needs a bearer access token"))
}

/// The caller of a call that lasts (a stream), and its token's `exp`.
pub async fn require_caller_until(
    verifier: &Verifier,
    metadata: &MetadataMap,
) -> Result<(Caller, i64), Status> {
    let value = metadata
        .get("authorization")
        .ok_or_else(|| Status::unauthenticated("this call needs a bearer access token"))?;
    let token =
        value.to_str().ok().and_then(bearer_token).ok_or_else(|| {
            Status::unauthenticated("authorization must be `Bearer <access token>`")
        })?;
    verifier.caller_until(token).await.map_err(|e| {
        tracing::debug!(error = %e, "token refused");
        token_status(&e)
    })
}
