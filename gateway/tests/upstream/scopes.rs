//! An OAuth access token (with `client_id` and `scope`) reaches a method
//! only with the scope the contract names for it: otherwise 403 with an
//! `insufficient_scope` challenge, and the service is never called.

use super::*;

/// A user's token issued to the client `app` with `scope`.
fn scoped(key: &SigningKey, scope: &str) -> String {
    let now = jsonwebtoken::get_current_timestamp() as i64;
    key.sign(&Claims {
        iss: "suite-auth".into(),
        aud: Audience::One("suite".into()),
        sub: "01a216e4-4d21-773d-b270-03fa587d21ab".into(),
        exp: now + 600,
        iat: now,
        nbf: now,
        jti: format!("scoped-{scope}"),
        sid: None,
        roles: vec!["user".into()],
        client_id: Some("app".into()),
        scope: Some(scope.into()),
        amr: Vec::new(),
        auth_time: None,
        pat: false,
    })
    .expect("token")
}

fn get_calls(f: &Fixture) -> usize {
    f.seen.seen.lock().map_or(0, |s| s.get_calls)
}

#[tokio::test]
async fn a_token_without_the_methods_scope_is_403_with_the_scope_named() {
    let mut f = fixture(5_000).await;
    f.token = scoped(&f.key, "openid user:write");
    let r = f.get("/api/v1/users/code-0", &[]).await;
    assert_eq!(r.status, 403, "{}", r.json);
    assert_eq!(
        header(&r, "www-authenticate"),
        Some(r#"Bearer error="insufficient_scope", scope="user:read""#)
    );
    assert_eq!(header(&r, "content-type"), Some("application/problem+json"));
    assert_eq!(get_calls(&f), 0, "refused before the service was called");

    // With the scope, the call goes through (code 0 is scripted as OK).
    f.token = scoped(&f.key, "user:read");
    let r = f.get("/api/v1/users/code-0", &[]).await;
    assert_ne!(r.status, 403, "{}", r.json);
    assert_eq!(get_calls(&f), 1);

    // A client's own token (client credentials) acts for no user.
    let now = jsonwebtoken::get_current_timestamp() as i64;
    f.token = f
        .key
        .sign(&Claims {
            iss: "suite-auth".into(),
            aud: Audience::One("suite".into()),
            sub: "machine".into(),
            exp: now + 600,
            iat: now,
            nbf: now,
            jti: "machine".into(),
            sid: None,
            roles: vec![],
            client_id: Some("machine".into()),
            scope: Some("user:read".into()),
            amr: Vec::new(),
            auth_time: None,
            pat: false,
        })
        .expect("token");
    let r = f.get("/api/v1/users/code-0", &[]).await;
    assert_eq!(r.status, 403, "{}", r.json);
    assert_eq!(
        header(&r, "www-authenticate"),
        Some(r#"Bearer error="insufficient_scope""#)
    );
    assert_eq!(get_calls(&f), 1);
}
