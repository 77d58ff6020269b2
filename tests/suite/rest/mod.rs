//! The public REST API, through the gateway, end to end, by topic.

mod errors;
mod input;
mod journey;
mod limits;
mod scopes;
mod security_headers;
mod slow_clients;

use crate::helpers::Suite;
use serde_json::json;

pub(super) const PASSWORD: &str = "analytical engine 1843";

pub(super) async fn register(s: &Suite, name: &str) -> serde_json::Value {
    let r = s
        .request("POST", "/api/v1/users", None, Some(json!({"username": name, "email": format!("{name}@example.com"), "password": PASSWORD})))
        .await
        .expect("register");
    assert_eq!(r.status, 201, "{}", r.json);
    let location = r
        .headers
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("Location");
    assert_eq!(
        location,
        format!("/api/v1/users/{}", r.json["id"].as_str().expect("id"))
    );
    r.json
}

pub(super) fn token(t: &serde_json::Value, field: &str) -> String {
    t[field].as_str().expect("token").to_owned()
}
