//! ClientService: registration and its rules, operators only, secret
//! rotation with an overlap, deletion.

use crate::helpers::{PASSWORD, Suite, authed};
use suite_proto::auth::{
    Client, ClientAuthentication, ClientType, CreateClientRequest, DeleteClientRequest,
    GetClientRequest, ListClientsRequest, RotateClientSecretRequest, TokenRequest,
    UpdateClientRequest, token_response,
};
use tonic::Code;
use tonic_types::StatusExt;

pub fn confidential(name: &str) -> Client {
    Client {
        name: name.into(),
        r#type: ClientType::Confidential.into(),
        redirect_uris: vec!["https://app.example.com/callback".into()],
        post_logout_redirect_uris: vec!["https://app.example.com/bye".into()],
        grant_types: vec![
            "authorization_code".into(),
            "refresh_token".into(),
            "client_credentials".into(),
        ],
        scopes: ["openid", "profile", "email", "offline_access", "user:read"]
            .map(str::to_owned)
            .to_vec(),
        ..Client::default()
    }
}

/// Registers `client` with the operator's token; (client id, secret).
pub async fn register_client(s: &Suite, client: Client) -> (String, String) {
    let r = s
        .clients()
        .create_client(authed(
            CreateClientRequest {
                client: Some(client),
            },
            &s.service_token_of("suitectl"),
        ))
        .await
        .expect("create client")
        .into_inner();
    (r.client.expect("client").client_id, r.client_secret)
}

/// A client-credentials grant: the error code, or "" for tokens.
pub async fn client_credentials(s: &Suite, client_id: &str, secret: &str) -> String {
    let r = s
        .oauth()
        .token(TokenRequest {
            client: Some(ClientAuthentication {
                client_id: client_id.into(),
                client_secret: secret.into(),
                method: "client_secret_basic".into(),
            }),
            grant_type: "client_credentials".into(),
            ..TokenRequest::default()
        })
        .await
        .expect("token call")
        .into_inner();
    match r.result {
        Some(token_response::Result::Tokens(_)) => String::new(),
        Some(token_response::Result::Error(e)) => e.error,
        None => "nothing".into(),
    }
}

fn fields(status: &tonic::Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

async fn clients_are_registered_listed_changed_and_deleted_by_operators_only(s: Suite) {
    let operator = s.service_token_of("suitectl");
    let admin = s.admin_token();
    let (id, secret) = register_client(&s, confidential("Billing")).await;
    assert_eq!(id.len(), 22);
    assert_eq!(secret.len(), 43);
    let public = Client {
        name: "Mobile".into(),
        r#type: ClientType::Public.into(),
        redirect_uris: vec!["http://127.0.0.1/cb".into()],
        ..Client::default()
    };
    let (public_id, public_secret) = register_client(&s, public).await;
    assert_eq!(public_secret, "", "a public client gets no secret");

    let got = s
        .clients()
        .get_client(authed(
            GetClientRequest {
                client_id: public_id.clone(),
            },
            &admin,
        ))
        .await
        .expect("get")
        .into_inner()
        .client
        .expect("client");
    // The defaults.
    assert_eq!(got.grant_types, ["authorization_code", "refresh_token"]);
    assert_eq!(got.scopes, ["openid", "profile", "email", "offline_access"]);
    assert_eq!(got.id_token_signed_response_alg, "RS256");

    let page = s
        .clients()
        .list_clients(authed(
            ListClientsRequest {
                page_size: 1,
                ..Default::default()
            },
            &operator,
        ))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(page.clients.len(), 1);
    assert_eq!(page.clients[0].client_id, id, "oldest first");
    let rest = s
        .clients()
        .list_clients(authed(
            ListClientsRequest {
                page_size: 1,
                page_token: page.next_page_token,
            },
            &operator,
        ))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(rest.clients[0].client_id, public_id);
    assert!(rest.next_page_token.is_empty());

    let changed = s
        .clients()
        .update_client(authed(
            UpdateClientRequest {
                client: Some(Client {
                    client_id: id.clone(),
                    name: "Billing 2".into(),
                    redirect_uris: vec![],
                    ..Client::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["name".into()],
                }),
            },
            &operator,
        ))
        .await
        .expect("update")
        .into_inner()
        .client
        .expect("client");
    assert_eq!(changed.name, "Billing 2");
    assert_eq!(
        changed.redirect_uris,
        ["https://app.example.com/callback"],
        "unmasked fields stay"
    );

    // A user is no operator.
    s.register("ulla").await;
    let user = s.login("ulla", PASSWORD).await.expect("login").access_token;
    let denied = s
        .clients()
        .get_client(authed(
            GetClientRequest {
                client_id: id.clone(),
            },
            &user,
        ))
        .await
        .expect_err("a user may not");
    assert_eq!(denied.code(), Code::PermissionDenied);

    assert_eq!(client_credentials(&s, &id, &secret).await, "");
    s.clients()
        .delete_client(authed(
            DeleteClientRequest {
                client_id: id.clone(),
            },
            &operator,
        ))
        .await
        .expect("delete");
    let gone = s
        .clients()
        .get_client(authed(
            GetClientRequest {
                client_id: id.clone(),
            },
            &operator,
        ))
        .await
        .expect_err("deleted");
    assert_eq!(gone.code(), Code::NotFound);
    assert_eq!(client_credentials(&s, &id, &secret).await, "invalid_client");
    s.stop().await;
}

async fn bad_client_settings_are_refused_naming_each_field(s: Suite) {
    let operator = s.service_token_of("suitectl");
    let create = |client: Client| {
        let mut clients = s.clients();
        let operator = operator.clone();
        async move {
            clients
                .create_client(authed(
                    CreateClientRequest {
                        client: Some(client),
                    },
                    &operator,
                ))
                .await
                .expect_err("refused")
        }
    };
    let err = create(Client {
        name: "x".into(),
        ..Client::default()
    })
    .await;
    assert_eq!(
        (err.code(), fields(&err)),
        (Code::InvalidArgument, vec!["client.type".to_owned()])
    );
    for (uri, why) in [
        ("http://app.example.com/cb", "plain http off loopback"),
        ("https://app.example.com/cb#x", "a fragment"),
        ("/cb", "relative"),
    ] {
        let err = create(Client {
            redirect_uris: vec![uri.into()],
            ..confidential("x")
        })
        .await;
        assert_eq!(fields(&err), ["client.redirect_uris"], "{why}");
    }
    let err = create(Client {
        r#type: ClientType::Public.into(),
        ..confidential("x")
    })
    .await;
    assert_eq!(
        fields(&err),
        ["client.grant_types"],
        "public clients get no client credentials"
    );
    let err = create(Client {
        name: String::new(),
        scopes: vec!["everything".into()],
        id_token_signed_response_alg: "HS256".into(),
        post_logout_redirect_uris: vec!["http://evil.example/".into()],
        ..confidential("x")
    })
    .await;
    assert_eq!(
        fields(&err),
        [
            "client.name",
            "client.post_logout_redirect_uris",
            "client.scopes",
            "client.id_token_signed_response_alg"
        ]
    );
    let listed = s
        .clients()
        .list_clients(authed(ListClientsRequest::default(), &operator))
        .await
        .expect("list")
        .into_inner();
    assert!(listed.clients.is_empty(), "nothing was registered");
    s.stop().await;
}

async fn a_rotated_secret_keeps_the_previous_one_working_for_its_overlap(s: Suite) {
    let operator = s.service_token_of("suitectl");
    let (id, first) = register_client(&s, confidential("Rotating")).await;
    let rotate = |ttl: Option<prost_types::Duration>| {
        let mut clients = s.clients();
        let (id, operator) = (id.clone(), operator.clone());
        async move {
            clients
                .rotate_client_secret(authed(
                    RotateClientSecretRequest {
                        client_id: id,
                        previous_secret_ttl: ttl,
                    },
                    &operator,
                ))
                .await
                .expect("rotate")
                .into_inner()
        }
    };
    let second = rotate(None).await;
    assert!(
        second
            .client
            .expect("client")
            .previous_secret_expire_time
            .is_some()
    );
    assert_ne!(second.client_secret, first);
    assert_eq!(
        client_credentials(&s, &id, &first).await,
        "",
        "the old one overlaps"
    );
    assert_eq!(client_credentials(&s, &id, &second.client_secret).await, "");
    // Rotating with no overlap ends the previous secret at once.
    let third = rotate(Some(prost_types::Duration {
        seconds: 0,
        nanos: 0,
    }))
    .await;
    assert_eq!(
        client_credentials(&s, &id, &second.client_secret).await,
        "invalid_client"
    );
    assert_eq!(client_credentials(&s, &id, &first).await, "invalid_client");
    assert_eq!(client_credentials(&s, &id, &third.client_secret).await, "");
    assert_eq!(client_credentials(&s, &id, "wrong").await, "invalid_client");
    let too_long = s
        .clients()
        .rotate_client_secret(authed(
            RotateClientSecretRequest {
                client_id: id.clone(),
                previous_secret_ttl: Some(prost_types::Duration {
                    seconds: 8 * 86_400,
                    nanos: 0,
                }),
            },
            &operator,
        ))
        .await
        .expect_err("over seven days");
    assert_eq!(fields(&too_long), ["previous_secret_ttl"]);
    s.stop().await;
}

suite_testkit::on_both_databases!(crate::helpers::spawn_suite;
    clients_are_registered_listed_changed_and_deleted_by_operators_only,
    bad_client_settings_are_refused_naming_each_field,
    a_rotated_secret_keeps_the_previous_one_working_for_its_overlap,
);
