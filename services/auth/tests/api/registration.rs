//! RFC 7591 dynamic client registration: off unless the operator turns it
//! on; the operator's rules in RFC 7591's error codes; never first-party,
//! never the admin scope; a registered client signs users in with PKCE.

use crate::{
    helpers::{Backend, Suite, authed, spawn_suite_tuned, spawn_suite_with},
    oauth_steps::*,
};
use prost::Message;
use std::time::Duration;
use suite_proto::auth::{
    ClientMetadata, GetClientRequest, GetProviderConfigurationRequest, RegisterClientRequest,
    RegisteredClient, register_client_response,
};

/// The suite with registration turned on.
async fn spawn_open(backend: Backend) -> Option<Suite> {
    spawn_suite_with(backend, |c| c.oidc_dynamic_registration = true).await
}

fn app(auth_method: &str) -> ClientMetadata {
    ClientMetadata {
        redirect_uris: vec![REDIRECT.into()],
        client_name: "Third-party app".into(),
        token_endpoint_auth_method: auth_method.into(),
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        scope: "openid profile email offline_access".into(),
        ..ClientMetadata::default()
    }
}

/// RegisterClient: the client, or the OAuth error code; a failed call panics.
async fn register(s: &Suite, metadata: ClientMetadata) -> Result<RegisteredClient, String> {
    match s
        .oauth()
        .register_client(RegisterClientRequest {
            metadata: Some(metadata),
        })
        .await
        .expect("register call")
        .into_inner()
        .result
    {
        Some(register_client_response::Result::Client(c)) => Ok(c),
        Some(register_client_response::Result::Error(e)) => Err(e.error),
        None => Err("nothing".into()),
    }
}

async fn enabled(s: &Suite) -> bool {
    s.oauth()
        .get_provider_configuration(GetProviderConfigurationRequest {})
        .await
        .expect("configuration")
        .into_inner()
        .registration_enabled
}

async fn registration_is_off_by_default(s: Suite) {
    assert!(!enabled(&s).await);
    let refused = s
        .oauth()
        .register_client(RegisterClientRequest {
            metadata: Some(app("none")),
        })
        .await
        .expect_err("off");
    assert_eq!(refused.code(), tonic::Code::NotFound);
    s.stop().await;
}

async fn a_registered_client_signs_a_user_in_with_pkce(s: Suite) {
    assert!(enabled(&s).await);
    let user = s.register("sofia").await;
    let public = register(&s, app("none")).await.expect("registered");
    assert!(public.client_secret.is_empty(), "a public client");
    assert!(public.client_id_issued_at > 0);
    let m = public.metadata.clone().expect("metadata");
    assert_eq!(m.token_endpoint_auth_method, "none");
    assert_eq!(m.response_types, vec!["code".to_owned()]);
    assert_eq!(m.scope, "openid profile email offline_access");

    // Never first-party: the consent page is shown (code_via_pages allows).
    let (verifier, challenge) = pkce();
    let (step, _) = authorize(&s, params(&public.client_id, &challenge), "").await;
    let suite_proto::auth::authorization_step::Step::SignIn(page) = step else {
        panic!("sign-in expected: {step:?}")
    };
    let (step, _) = sign_in(&s, &page.request_id, &page.csrf_token, BINDING, "sofia").await;
    assert!(
        matches!(
            step,
            suite_proto::auth::authorization_step::Step::Consent(_)
        ),
        "{step:?}"
    );
    let (code, _) = code_via_pages(&s, &public.client_id, &challenge, "sofia").await;
    let t = exchange(&s, &public.client_id, "", &code, &verifier)
        .await
        .expect("tokens");
    let id = verify_id_token(&s, &t.id_token, &public.client_id).await;
    assert_eq!(id["sub"], user.id.as_str());
    let client = s
        .clients()
        .get_client(authed(
            GetClientRequest {
                client_id: public.client_id.clone(),
            },
            &s.service_token_of("suitectl"),
        ))
        .await
        .expect("operators see it")
        .into_inner()
        .client
        .expect("client");
    assert!(!client.first_party);

    // Confidential by default (client_secret_basic), the secret shown once.
    let confidential = register(
        &s,
        ClientMetadata {
            redirect_uris: vec![REDIRECT.into()],
            ..ClientMetadata::default()
        },
    )
    .await
    .expect("registered");
    assert_eq!(confidential.client_secret.len(), 43);
    let m = confidential.metadata.expect("metadata");
    assert_eq!(m.token_endpoint_auth_method, "client_secret_basic");
    assert_eq!(m.grant_types, vec!["authorization_code".to_owned()]);
    assert_eq!(m.scope, "openid profile email");
    assert_eq!(m.client_name, "Unnamed application");
    s.stop().await;
}

async fn invalid_metadata_is_refused_in_rfc_7591_terms(s: Suite) {
    let cases: Vec<(ClientMetadata, &str)> = vec![
        (
            ClientMetadata {
                redirect_uris: vec!["http://evil.example/cb".into()],
                ..app("none")
            },
            "invalid_redirect_uri",
        ),
        (
            ClientMetadata {
                redirect_uris: vec!["https://app.example/cb#frag".into()],
                ..app("none")
            },
            "invalid_redirect_uri",
        ),
        (
            ClientMetadata {
                redirect_uris: Vec::new(),
                ..app("none")
            },
            "invalid_redirect_uri",
        ),
        (
            ClientMetadata {
                post_logout_redirect_uris: vec!["javascript:alert(1)".into()],
                ..app("none")
            },
            "invalid_redirect_uri",
        ),
        (
            ClientMetadata {
                scope: "openid admin".into(),
                ..app("none")
            },
            "invalid_client_metadata",
        ),
        (
            ClientMetadata {
                scope: "openid everything".into(),
                ..app("none")
            },
            "invalid_client_metadata",
        ),
        (app("private_key_jwt"), "invalid_client_metadata"),
        (
            ClientMetadata {
                response_types: vec!["token".into()],
                ..app("none")
            },
            "invalid_client_metadata",
        ),
        (
            ClientMetadata {
                grant_types: vec!["password".into()],
                ..app("none")
            },
            "invalid_client_metadata",
        ),
        (
            ClientMetadata {
                grant_types: vec!["client_credentials".into()],
                ..app("none")
            },
            "invalid_client_metadata",
        ),
        (
            ClientMetadata {
                client_name: "x".repeat(65),
                ..app("none")
            },
            "invalid_client_metadata",
        ),
    ];
    for (metadata, error) in cases {
        let shown = format!("{metadata:?}");
        assert_eq!(
            register(&s, metadata).await.err().as_deref(),
            Some(error),
            "{shown}"
        );
    }
    s.stop().await;
}

/// A registration is the same `ClientCreated` event as an operator's.
async fn a_registration_is_a_client_created_event(backend: Backend) {
    let bus = suite_events::LocalBus::default();
    let for_auth = bus.clone();
    let Some(s) = spawn_suite_tuned(
        backend,
        |auth| {
            auth.events.local = Some(for_auth);
            auth.oidc_dynamic_registration = true;
        },
        |_| {},
    )
    .await
    else {
        return;
    };
    let filter = suite_events::Filter {
        types: vec!["suite.auth.v1.ClientCreated".into()],
        ..suite_events::Filter::default()
    };
    let mut events = suite_events::Bus::Local(bus)
        .subscribe(filter, suite_events::Start::New)
        .await
        .expect("subscribe");
    let client = register(&s, app("none")).await.expect("registered");
    let created = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match events.next().await {
                Some(Ok(suite_events::Item::Event { event, .. })) => return event,
                Some(Ok(suite_events::Item::CaughtUp)) => {}
                other => panic!("the bus ended: {other:?}"),
            }
        }
    })
    .await
    .expect("a ClientCreated event in time");
    let body = suite_proto::auth::ClientCreated::decode(created.data.clone()).expect("decodes");
    assert_eq!(body.client_id, client.client_id);
    assert_eq!(body.name, "Third-party app");
    s.stop().await;
}

suite_testkit::on_both_databases!(crate::helpers::spawn_suite;
    registration_is_off_by_default,
);

suite_testkit::on_both_databases!(mod events; suite_testkit::db::backend;
    a_registration_is_a_client_created_event,
);

suite_testkit::on_both_databases!(mod open; crate::registration::spawn_open;
    a_registered_client_signs_a_user_in_with_pkce,
    invalid_metadata_is_refused_in_rfc_7591_terms,
);
