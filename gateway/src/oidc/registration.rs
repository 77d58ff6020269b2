//! Dynamic client registration (RFC 7591): `POST /oauth2/register`, JSON in
//! and out, anonymous, when the operator turned it on.

use super::{
    Visit,
    endpoints::{OAuthProblem, no_store_json, outcome_of},
    respond, too_many,
};
use crate::contract::routes::RateClass;
use axum::{
    body::Bytes,
    response::{IntoResponse, Response},
};
use http::{HeaderMap, StatusCode, header};
use serde_json::{Map, Value};
use suite_proto::auth::{ClientMetadata, RegisterClientRequest};

/// `POST /oauth2/register` (RFC 7591): anonymous registration, when the
/// operator turned it on (404 otherwise, from the auth service's NOT_FOUND).
pub async fn register(visit: Visit, body: Bytes) -> Response {
    respond(async {
        // The strict bucket, as password sign-ins: anyone may call this, and
        // every call writes a client.
        let client = visit.admit(RateClass::Auth).await.map_err(too_many)?;
        let metadata = client_metadata(&visit.headers, &body)?;
        let request = RegisterClientRequest {
            metadata: Some(metadata),
        };
        let oidc = &visit.oidc;
        let result =
            outcome_of(oidc.client().register_client(oidc.request(request, client))).await?;
        Ok(match result {
            Ok(c) => {
                let m = c.metadata.unwrap_or_default();
                let mut body = Map::new();
                body.insert("client_id".into(), c.client_id.into());
                if !c.client_secret.is_empty() {
                    body.insert("client_secret".into(), c.client_secret.into());
                    // RFC 7591 §3.2.1: 0, the secret does not expire.
                    body.insert("client_secret_expires_at".into(), 0.into());
                }
                body.insert("client_id_issued_at".into(), c.client_id_issued_at.into());
                body.insert("client_name".into(), m.client_name.into());
                body.insert("redirect_uris".into(), m.redirect_uris.into());
                body.insert("grant_types".into(), m.grant_types.into());
                body.insert("response_types".into(), m.response_types.into());
                body.insert(
                    "token_endpoint_auth_method".into(),
                    m.token_endpoint_auth_method.into(),
                );
                body.insert("scope".into(), m.scope.into());
                if !m.post_logout_redirect_uris.is_empty() {
                    body.insert(
                        "post_logout_redirect_uris".into(),
                        m.post_logout_redirect_uris.into(),
                    );
                }
                if !m.backchannel_logout_uri.is_empty() {
                    body.insert(
                        "backchannel_logout_uri".into(),
                        m.backchannel_logout_uri.into(),
                    );
                }
                no_store_json(StatusCode::CREATED, &Value::Object(body))
            }
            Err(e) => OAuthProblem::from_answer(e, false).into_response(),
        })
    })
    .await
}

/// The RFC 7591 metadata of a registration's JSON body; members this
/// provider does not know are ignored, as §2 asks.
fn client_metadata(headers: &HeaderMap, body: &[u8]) -> Result<ClientMetadata, OAuthProblem> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    let bad = |why: &str| OAuthProblem::new("invalid_client_metadata", why);
    if !json {
        return Err(bad("the body must be application/json"));
    }
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return Err(bad("the body must be a JSON object"));
    };
    let text = |name: &str| -> Result<String, OAuthProblem> {
        match fields.get(name) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(bad(&format!("{name} must be a string"))),
        }
    };
    let list = |name: &str, error: &str| -> Result<Vec<String>, OAuthProblem> {
        match fields.get(name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(OAuthProblem::new(
                        error,
                        format!("{name} must be an array of strings"),
                    )),
                })
                .collect(),
            Some(_) => Err(OAuthProblem::new(
                error,
                format!("{name} must be an array of strings"),
            )),
        }
    };
    Ok(ClientMetadata {
        redirect_uris: list("redirect_uris", "invalid_redirect_uri")?,
        client_name: text("client_name")?,
        grant_types: list("grant_types", "invalid_client_metadata")?,
        response_types: list("response_types", "invalid_client_metadata")?,
        token_endpoint_auth_method: text("token_endpoint_auth_method")?,
        scope: text("scope")?,
        post_logout_redirect_uris: list("post_logout_redirect_uris", "invalid_redirect_uri")?,
        backchannel_logout_uri: text("backchannel_logout_uri")?,
    })
}
