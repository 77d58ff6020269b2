//! Authentication: a route that is not public needs a valid bearer access
//! token, verified here with the auth service's public keys; without one the
//! answer is 401 before any service is called. An OAuth access token must
//! also have been granted the scope the contract names for the route's
//! method (`suite.api.v1.access`); without it the answer is 403 with an
//! `insufficient_scope` challenge (RFC 6750), again before any call.

use crate::{contract::endpoints::Matched, http::problem::Problem, state::SharedState};
use axum::{
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use http::{HeaderMap, header};
use http::{HeaderValue, StatusCode};
use suite_proto::access::method_access;
use suite_tokens::{Lasting, Refusal, TokenError, Verifier, verifier::bearer_token};

/// The layer: a protected route's request without a valid token is 401
/// here, so no service is called for it. The verified token (a
/// [`Lasting`]) is left in the request's extensions for what outlives the
/// request's head: an event stream ends when its token does, at `exp` or at
/// its revocation.
pub async fn authenticate(
    State(gw): State<SharedState>,
    matched: Matched,
    mut req: Request,
    next: Next,
) -> Response {
    if let Some(endpoint) = matched.endpoint()
        && !endpoint.route.public
    {
        match verify(&gw.verifier, req.headers()).await {
            Ok(token) => {
                let access = method_access(endpoint.grpc_path.path());
                if let Err(refusal) = token.caller.may_call(access) {
                    return insufficient(refusal).into_response();
                }
                // A personal access token goes no further: the services get
                // the access token it was exchanged for, which they verify
                // as any other (no exchange of their own).
                if let Some(exchanged) = &token.exchanged {
                    personal_token_requests().inc();
                    if let Ok(value) = HeaderValue::from_str(&format!("Bearer {exchanged}")) {
                        req.headers_mut().insert(header::AUTHORIZATION, value);
                    }
                }
                req.extensions_mut().insert(token);
            }
            Err(problem) => return problem.into_response(),
        }
    }
    next.run(req).await
}

/// Requests let in with a personal access token (what scripts do with
/// them; their exchanges are the auth service's metric).
fn personal_token_requests() -> &'static prometheus_client::metrics::counter::Counter {
    static COUNTER: std::sync::LazyLock<prometheus_client::metrics::counter::Counter> =
        std::sync::LazyLock::new(|| {
            suite_telemetry::metrics::metrics().registered(
                "suite_gateway_personal_access_token_requests",
                "Requests authenticated with a personal access token",
                Default::default(),
            )
        });
    &COUNTER
}

/// The request's bearer token, verified.
async fn verify(verifier: &Verifier, headers: &HeaderMap) -> Result<Lasting, Problem> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(Problem::unauthenticated(
            "this call needs a bearer access token",
        ));
    };
    let token =
        value.to_str().ok().and_then(bearer_token).ok_or_else(|| {
            Problem::unauthenticated("authorization must be `Bearer <access token>`")
        })?;
    verifier.lasting(token).await.map_err(|e| {
        tracing::debug!(error = %e, "token refused");
        refused(&e)
    })
}

/// The problem of a token refused, or ended under a stream.
pub fn refused(e: &TokenError) -> Problem {
    Problem::unauthenticated(match e {
        TokenError::Expired => "access token expired",
        TokenError::Revoked => "access token revoked",
        TokenError::Invalid(_) | TokenError::Rejected(_) => "invalid access token",
        TokenError::Unavailable(_) => {
            return Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot check the personal access token now; try again",
            );
        }
    })
}

/// The 403 of a good token whose grant does not reach the method: the
/// challenge names the scope that would (RFC 6750 section 3.1), so a client
/// knows what to ask its user for.
pub fn insufficient(refusal: Refusal) -> Problem {
    let challenge = match refusal.scope() {
        // Scope tokens are printable ASCII without quotes or backslashes
        // (RFC 6749 section 3.3), and ours come from the contract.
        Some(scope) => format!(r#"Bearer error="insufficient_scope", scope="{scope}""#),
        None => r#"Bearer error="insufficient_scope""#.to_owned(),
    };
    let problem = Problem::new(StatusCode::FORBIDDEN, refusal.to_string());
    match HeaderValue::from_str(&challenge) {
        Ok(value) => problem.with_header(header::WWW_AUTHENTICATE, value),
        Err(_) => problem,
    }
}
