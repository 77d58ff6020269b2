//! Authentication: a route that is not public needs a valid bearer access
//! token, verified here with the auth service's public keys; without one the
//! answer is 401 before any service is called.

use crate::{endpoints::Matched, problem::Problem, state::Shared};
use axum::{
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use http::{HeaderMap, header};
use suite_tokens::{TokenError, Verifier, verifier::bearer_token};

/// The verified token's `exp` (Unix seconds), left in the request's
/// extensions for what outlives the request's head (an event stream ends
/// when its token does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenExpiry(pub i64);

/// The layer.
pub async fn authenticate(
    State(gw): State<Shared>,
    matched: Matched,
    mut req: Request,
    next: Next,
) -> Response {
    if let Some(endpoint) = matched.endpoint()
        && !endpoint.route.public
    {
        match verify(&gw.verifier, req.headers()).await {
            Ok(exp) => {
                req.extensions_mut().insert(TokenExpiry(exp));
            }
            Err(problem) => return problem.into_response(),
        }
    }
    next.run(req).await
}

/// The request's bearer token, verified: its `exp`.
async fn verify(verifier: &Verifier, headers: &HeaderMap) -> Result<i64, Problem> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(Problem::unauthenticated(
            "this call needs a bearer access token",
        ));
    };
    let token =
        value.to_str().ok().and_then(bearer_token).ok_or_else(|| {
            Problem::unauthenticated("authorization must be `Bearer <access token>`")
        })?;
    match verifier.caller_until(token).await {
        Ok((_, exp)) => Ok(exp),
        Err(e) => {
            tracing::debug!(error = %e, "token refused");
            Err(Problem::unauthenticated(match e {
                TokenError::Expired => "access token expired",
                TokenError::Revoked => "access token revoked",
                TokenError::Invalid(_) | TokenError::Rejected(_) => "invalid access token",
            }))
        }
    }
}
