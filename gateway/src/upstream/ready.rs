//! Readiness (`/readyz`): at least one replica of every upstream answers
//! SERVING on the gRPC health protocol, and the gateway is not stopping.

use crate::{http::problem::Problem, state::SharedState};
use axum::{
    extract::State,
    response::{IntoResponse, Response},
};
use http::StatusCode;
use std::time::Duration;

pub async fn ready(State(gw): State<SharedState>) -> Response {
    // From the stop signal on, at once and without asking the upstreams:
    // what balances over the replicas must stop sending here first.
    if *gw.closing.borrow() {
        return Problem::new(StatusCode::SERVICE_UNAVAILABLE, "not ready: stopping")
            .into_response();
    }
    let mut not_ready = Vec::new();
    if gw.verifier.revocations().is_some_and(|r| !r.is_caught_up()) {
        not_ready.push("revocations (reading the recent events)");
    }
    for (name, upstream) in &gw.upstreams {
        if !upstream.any_serving(name, Duration::from_secs(1)).await {
            not_ready.push(*name);
        }
    }
    if not_ready.is_empty() {
        (
            StatusCode::OK,
            axum::Json(serde_json::json!({ "status": "ready" })),
        )
            .into_response()
    } else {
        not_ready.sort_unstable();
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}", not_ready.join(", ")),
        )
        .into_response()
    }
}
