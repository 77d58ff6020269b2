//! The device authorization grant (RFC 8628) end to end: a CLI's public
//! client registered over REST, its codes from the gateway, the user code
//! typed on the real verification page (lower case, no dash), the real
//! sign-in and consent pages, and the CLI's polls of the token endpoint.

use crate::{
    helpers::{Suite, register_as},
    oidc_browser::{Browser, encode, http},
};

const PASSWORD: &str = "correct horse battery";
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// One poll of the token endpoint: (status, body).
async fn poll(s: &Suite, client_id: &str, device_code: &str) -> (u16, serde_json::Value) {
    let r = http(
        s,
        "POST",
        "/oauth2/token",
        &[],
        Some(encode(&[
            ("grant_type", DEVICE_GRANT),
            ("device_code", device_code),
            ("client_id", client_id),
        ])),
    )
    .await;
    (r.status, r.json())
}

async fn a_cli_signs_its_user_in_through_the_verification_page(s: Suite) {
    let admin = s.mint(&uuid::Uuid::now_v7().to_string(), &["admin"]);
    let r = s
        .request(
            "POST",
            "/api/v1/oauth/clients",
            Some(&admin),
            Some(serde_json::json!({
                "name": "Acme CLI",
                "type": "CLIENT_TYPE_PUBLIC",
                "grantTypes": [DEVICE_GRANT, "refresh_token"],
                "scopes": ["openid", "profile", "offline_access", "user:read"],
            })),
        )
        .await
        .expect("create client");
    assert_eq!(r.status, 201, "{}", r.json);
    let client_id = r.json["client"]["clientId"]
        .as_str()
        .expect("id")
        .to_owned();
    let user = register_as(&s, "tomas", "tomas@example.com", PASSWORD).await;
    let user_id = user.json["id"].as_str().expect("id").to_owned();

    let issuer = format!("http://{}", s.gateway);
    let d = http(&s, "GET", "/.well-known/openid-configuration", &[], None)
        .await
        .json();
    assert_eq!(
        d["device_authorization_endpoint"],
        format!("{issuer}/oauth2/device_authorization")
    );
    assert!(
        d["grant_types_supported"]
            .as_array()
            .is_some_and(|g| g.iter().any(|g| g == DEVICE_GRANT))
    );
    assert!(d.get("registration_endpoint").is_none(), "off by default");

    let r = http(
        &s,
        "POST",
        "/oauth2/device_authorization",
        &[],
        Some(encode(&[
            ("client_id", &client_id),
            ("scope", "openid profile offline_access user:read"),
        ])),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let codes = r.json();
    let device_code = codes["device_code"]
        .as_str()
        .expect("device code")
        .to_owned();
    let user_code = codes["user_code"].as_str().expect("user code").to_owned();
    assert_eq!(codes["verification_uri"], format!("{issuer}/oauth2/device"));
    assert_eq!(
        poll(&s, &client_id, &device_code).await.1["error"],
        "authorization_pending"
    );

    // The user, in a browser elsewhere: the page, the code typed loosely.
    let mut browser = Browser::default();
    let page = browser.get(&s, "/oauth2/device").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let typed = user_code.replace('-', "").to_ascii_lowercase();
    let page = browser
        .post(
            &s,
            "/oauth2/device",
            &[
                ("user_code", &typed),
                ("csrf_token", &page.field("csrf_token")),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let page = browser
        .post(
            &s,
            "/oauth2/signin",
            &[
                ("request_id", &page.field("request_id")),
                ("csrf_token", &page.field("csrf_token")),
                ("redirect_origin", ""),
                ("login", "tomas"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains(&user_code),
        "the code to compare: {}",
        page.body
    );
    let page = browser
        .post(
            &s,
            "/oauth2/consent",
            &[
                ("request_id", &page.field("request_id")),
                ("csrf_token", &page.field("csrf_token")),
                ("redirect_origin", ""),
                ("decision", "allow"),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Device connected"), "{}", page.body);

    // The CLI's next poll: the tokens, once; the access token works.
    let (status, t) = poll(&s, &client_id, &device_code).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["scope"], "openid profile offline_access user:read");
    assert!(t["refresh_token"].is_string() && t["id_token"].is_string());
    let access = t["access_token"].as_str().expect("access token");
    let me = s
        .request("GET", "/api/v1/users/me", Some(access), None)
        .await
        .expect("me");
    assert_eq!(me.status, 200, "{}", me.json);
    assert_eq!(me.json["id"], user_id.as_str());
    let (status, again) = poll(&s, &client_id, &device_code).await;
    assert_eq!(
        (status, again["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    s.stop().await;
}

suite_testkit::on_both_databases!(crate::helpers::spawn_suite;
    a_cli_signs_its_user_in_through_the_verification_page,
);
