//! OAuth clients: registration and its rules, secrets (generated, stored
//! as SHA-256, rotated with an overlap), redirect-URI matching, and client
//! authentication at the token, introspection and revocation endpoints.

use super::{
    Answer, GRANT_TYPES, OAuthCore, OAuthFail, SCOPES, hash, random_token, same,
    store::{ClientRecord, ClientSettings, EventFor},
};
use crate::error::Error;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use std::time::Duration;
use suite_events::Event;
use suite_grpc::paging::Paging;
use suite_proto::{
    auth::{
        ClientCreated, ClientDeleted, ClientSecretRotated, ClientUpdated, RevocationReason,
        SessionRevoked,
    },
    time::now,
};
use suite_tokens::Caller;
use uuid::Uuid;

mod uris;
pub use uris::{redirect_matches, redirect_uri_problem};

/// The longest access-token lifetime a client may have.
const MAX_ACCESS_TTL: Duration = Duration::from_secs(3600);
/// How long a rotated-out secret keeps working unless told otherwise.
const DEFAULT_PREVIOUS_SECRET_TTL: Duration = Duration::from_secs(3600);
const MAX_PREVIOUS_SECRET_TTL: Duration = Duration::from_secs(7 * 86_400);
const MAX_URIS: usize = 20;
pub(super) const MAX_URI_CHARS: usize = 2000;

/// `ListClients` pages.
const CLIENTS_PAGING: Paging = Paging::new("c1:");

/// A client's settable fields, as a create or update gives them.
#[derive(Debug, Clone, Default)]
pub struct ClientInput {
    pub name: String,
    /// `None`: the type was not given.
    pub confidential: Option<bool>,
    pub settings: ClientSettings,
    /// `None`: not given.
    pub access_token_ttl: Option<Duration>,
}

/// The update-mask paths [`OAuthCore::update_client`] knows.
pub const SETTABLE: &[&str] = &[
    "name",
    "redirect_uris",
    "post_logout_redirect_uris",
    "grant_types",
    "scopes",
    "first_party",
    "backchannel_logout_uri",
    "id_token_signed_response_alg",
    "access_token_ttl",
];

/// RFC 7591 client metadata, as registration takes and answers it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientMetadata {
    pub redirect_uris: Vec<String>,
    pub client_name: String,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    pub token_endpoint_auth_method: String,
    pub scope: String,
    pub post_logout_redirect_uris: Vec<String>,
    pub backchannel_logout_uri: String,
}

/// A dynamically registered client (no `Debug`: it holds the secret).
pub struct Registered {
    pub client_id: String,
    /// Empty for a public client.
    pub secret: String,
    pub issued_at: i64,
    pub metadata: ClientMetadata,
}

/// One page of clients.
#[derive(Debug)]
pub struct ClientPage {
    pub clients: Vec<ClientRecord>,
    pub next_page_token: String,
}

fn operator(caller: &Caller) -> Result<(), Error> {
    if caller.is_operator() {
        Ok(())
    } else {
        Err(Error::PermissionDenied(
            "only admins and the operator manage OAuth clients",
        ))
    }
}

/// Checks `input` for a client of type `confidential`; the field violations.
fn validate(input: &ClientInput, confidential: bool) -> Vec<(&'static str, String)> {
    let mut bad = Vec::new();
    let chars = input.name.chars().count();
    if chars == 0 || chars > 64 || input.name.trim().is_empty() {
        bad.push(("client.name", "must be 1 to 64 characters".into()));
    } else if input.name.chars().any(char::is_control) {
        bad.push(("client.name", "must not contain control characters".into()));
    }
    let s = &input.settings;
    for (field, uris) in [
        ("client.redirect_uris", &s.redirect_uris),
        (
            "client.post_logout_redirect_uris",
            &s.post_logout_redirect_uris,
        ),
    ] {
        if uris.len() > MAX_URIS {
            bad.push((field, format!("must hold at most {MAX_URIS} URIs")));
        }
        for uri in uris {
            if let Some(problem) = redirect_uri_problem(uri) {
                bad.push((field, format!("{uri:.80}: {problem}")));
            }
        }
    }
    for grant in &s.grant_types {
        if !GRANT_TYPES.contains(&grant.as_str()) {
            bad.push((
                "client.grant_types",
                format!("{grant:.64}: not a grant type offered"),
            ));
        }
    }
    if !confidential && s.grant_types.iter().any(|g| g == "client_credentials") {
        bad.push((
            "client.grant_types",
            "client_credentials is for confidential clients only".into(),
        ));
    }
    if s.grant_types.iter().any(|g| g == "authorization_code") && s.redirect_uris.is_empty() {
        bad.push((
            "client.redirect_uris",
            "at least one is needed for authorization_code".into(),
        ));
    }
    if s.grant_types.is_empty() {
        bad.push((
            "client.grant_types",
            "must name at least one grant type".into(),
        ));
    }
    for scope in &s.scopes {
        if !SCOPES.contains(&scope.as_str()) {
            bad.push(("client.scopes", format!("{scope:.64}: not a scope offered")));
        }
    }
    if !s.backchannel_logout_uri.is_empty()
        && let Some(problem) = redirect_uri_problem(&s.backchannel_logout_uri)
    {
        bad.push(("client.backchannel_logout_uri", problem.into()));
    }
    if !["RS256", "ES256", "EdDSA"].contains(&s.id_token_alg.as_str()) {
        bad.push((
            "client.id_token_signed_response_alg",
            "must be RS256, ES256 or EdDSA".into(),
        ));
    }
    if let Some(ttl) = input.access_token_ttl
        && (ttl.is_zero() || ttl > MAX_ACCESS_TTL)
    {
        bad.push((
            "client.access_token_ttl",
            "must be more than 0 and at most one hour".into(),
        ));
    }
    bad
}

/// Fills what was left empty with the defaults.
fn with_defaults(mut input: ClientInput) -> ClientInput {
    let s = &mut input.settings;
    if s.grant_types.is_empty() {
        s.grant_types = vec!["authorization_code".into(), "refresh_token".into()];
    }
    if s.scopes.is_empty() {
        s.scopes = ["openid", "profile", "email", "offline_access"]
            .map(str::to_owned)
            .to_vec();
    }
    if s.id_token_alg.is_empty() {
        s.id_token_alg = "RS256".into();
    }
    dedup(&mut s.grant_types);
    dedup(&mut s.scopes);
    input.settings.access_token_ttl_secs = input.access_token_ttl.map(|d| d.as_secs());
    input
}

fn dedup(v: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    v.retain(|x| seen.insert(x.clone()));
}

/// A new secret and its stored hash.
fn new_secret() -> Result<(String, String), Error> {
    let secret = random_token()?;
    let hashed = hash(&secret);
    Ok((secret, hashed))
}

/// The event ending session `id` of `user` because its client went.
pub(crate) fn client_gone(id: Uuid, user: Uuid) -> Event {
    Event::new(
        &SessionRevoked {
            session_id: id.to_string(),
            user_id: user.to_string(),
            reason: RevocationReason::ByAdmin.into(),
        },
        user,
    )
}

impl OAuthCore {
    /// Registers a client; its secret (confidential) is in the answer only.
    pub async fn create_client(
        &self,
        caller: &Caller,
        input: ClientInput,
    ) -> Result<(ClientRecord, Option<String>), Error> {
        operator(caller)?;
        self.register(input).await
    }

    /// Registers a client after its caller was checked.
    async fn register(&self, input: ClientInput) -> Result<(ClientRecord, Option<String>), Error> {
        let Some(confidential) = input.confidential else {
            return Err(Error::invalid(
                "client.type",
                "must be CLIENT_TYPE_PUBLIC or CLIENT_TYPE_CONFIDENTIAL",
            ));
        };
        let input = with_defaults(input);
        let bad = validate(&input, confidential);
        if !bad.is_empty() {
            return Err(Error::InvalidArgument(bad));
        }
        let id = Uuid::now_v7();
        let (secret, secret_hash) = if confidential {
            let (s, h) = new_secret()?;
            (Some(s), Some(h))
        } else {
            (None, None)
        };
        let now = now();
        let record = ClientRecord {
            id,
            // 22 URL-safe characters; ordered like the clients themselves.
            client_id: URL_SAFE_NO_PAD.encode(id.as_bytes()),
            name: input.name,
            confidential,
            settings: input.settings,
            secret_hash,
            previous_secret_hash: None,
            previous_secret_expires_at: None,
            created_at: now,
            updated_at: now,
        };
        let created = Event::new(
            &ClientCreated {
                client_id: record.client_id.clone(),
                name: record.name.clone(),
            },
            id,
        );
        if !self.store.create_client(&record, &[created]).await? {
            return Err(Error::Internal("a generated client id was taken".into()));
        }
        self.auth.wake();
        tracing::info!(client.id = %record.client_id, confidential, "OAuth client registered");
        Ok((record, secret))
    }

    /// RFC 7591 dynamic registration, anonymous: the same rules as an
    /// operator's registration, then never first-party, never the admin
    /// scope. `NotFound` unless the operator turned it on.
    pub async fn register_dynamic(&self, m: ClientMetadata) -> Answer<Registered> {
        if !self.auth.settings().dynamic_registration {
            return Err(Error::NotFound("dynamic client registration is off"));
        }
        let metadata = |why: &str| Ok(Err(OAuthFail::new("invalid_client_metadata", why)));
        let confidential = match m.token_endpoint_auth_method.as_str() {
            "" | "client_secret_basic" | "client_secret_post" => true,
            "none" => false,
            _ => {
                return metadata(
                    "token_endpoint_auth_method must be client_secret_basic, client_secret_post or none",
                );
            }
        };
        let auth_method = if m.token_endpoint_auth_method.is_empty() {
            "client_secret_basic".to_owned()
        } else {
            m.token_endpoint_auth_method.clone()
        };
        let grant_types = if m.grant_types.is_empty() {
            vec!["authorization_code".to_owned()]
        } else {
            m.grant_types.clone()
        };
        let code_flow = grant_types.iter().any(|g| g == "authorization_code");
        let response_types = if m.response_types.is_empty() && code_flow {
            vec!["code".to_owned()]
        } else {
            m.response_types.clone()
        };
        // RFC 7591 §2.1: `code` goes with authorization_code, and it is
        // the only response type there is here.
        if response_types.iter().any(|r| r != "code") || code_flow == response_types.is_empty() {
            return metadata(
                "response_types must be [\"code\"] with authorization_code, else empty",
            );
        }
        let mut scopes = suite_tokens::scope_list(&m.scope);
        if scopes.is_empty() {
            scopes = ["openid", "profile", "email"].map(str::to_owned).to_vec();
        }
        if scopes.iter().any(|s| s == suite_tokens::ADMIN_SCOPE) {
            return metadata("the admin scope is for clients an operator registers");
        }
        let name = if m.client_name.trim().is_empty() {
            "Unnamed application".to_owned()
        } else {
            m.client_name.clone()
        };
        let input = ClientInput {
            name,
            confidential: Some(confidential),
            access_token_ttl: None,
            settings: ClientSettings {
                redirect_uris: m.redirect_uris.clone(),
                post_logout_redirect_uris: m.post_logout_redirect_uris.clone(),
                grant_types,
                scopes,
                first_party: false,
                backchannel_logout_uri: m.backchannel_logout_uri.clone(),
                id_token_alg: String::new(),
                access_token_ttl_secs: None,
            },
        };
        let (record, secret) = match self.register(input).await {
            Ok(done) => done,
            // The operator's rules, in RFC 7591 §3.2.2's words.
            Err(Error::InvalidArgument(bad)) => {
                let uri = bad
                    .iter()
                    .find(|(field, _)| field.ends_with("redirect_uris"));
                let (error, (field, why)) = match (uri, bad.first()) {
                    (Some(v), _) => ("invalid_redirect_uri", v),
                    (None, Some(v)) => ("invalid_client_metadata", v),
                    (None, None) => return metadata("the metadata is invalid"),
                };
                let field = field.trim_start_matches("client.");
                return Ok(Err(OAuthFail::new(error, format!("{field}: {why}"))));
            }
            Err(e) => return Err(e),
        };
        tracing::info!(client.id = %record.client_id, "OAuth client registered dynamically");
        let s = &record.settings;
        let metadata = ClientMetadata {
            redirect_uris: s.redirect_uris.clone(),
            client_name: record.name.clone(),
            grant_types: s.grant_types.clone(),
            response_types,
            token_endpoint_auth_method: auth_method,
            scope: s.scopes.join(" "),
            post_logout_redirect_uris: s.post_logout_redirect_uris.clone(),
            backchannel_logout_uri: s.backchannel_logout_uri.clone(),
        };
        Ok(Ok(Registered {
            issued_at: record.created_at.timestamp(),
            client_id: record.client_id,
            secret: secret.unwrap_or_default(),
            metadata,
        }))
    }

    pub async fn get_client(
        &self,
        caller: &Caller,
        client_id: &str,
    ) -> Result<ClientRecord, Error> {
        operator(caller)?;
        self.store
            .get_client(client_id)
            .await?
            .ok_or(Error::NotFound("client not found"))
    }

    pub async fn list_clients(
        &self,
        caller: &Caller,
        page_size: i32,
        page_token: &str,
    ) -> Result<ClientPage, Error> {
        operator(caller)?;
        let page = CLIENTS_PAGING.page(page_size, page_token)?;
        let mut clients = self.store.list_clients(page.after, page.fetch()).await?;
        let next_page_token = CLIENTS_PAGING.finish(page, &mut clients, |c| c.id);
        Ok(ClientPage {
            clients,
            next_page_token,
        })
    }

    /// Changes the fields `mask` names (every settable one if empty).
    pub async fn update_client(
        &self,
        caller: &Caller,
        client_id: &str,
        input: ClientInput,
        mask: &[String],
    ) -> Result<ClientRecord, Error> {
        operator(caller)?;
        let all: Vec<String> = SETTABLE.iter().map(|s| (*s).to_owned()).collect();
        let mask = if mask.is_empty() { &all[..] } else { mask };
        for path in mask {
            if path == "type" {
                return Err(Error::invalid(
                    "update_mask",
                    "a client's type cannot change",
                ));
            }
            if !SETTABLE.contains(&path.as_str()) {
                return Err(Error::invalid(
                    "update_mask",
                    format!("{path:.64}: not a settable field"),
                ));
            }
        }
        let mut record = self
            .store
            .get_client(client_id)
            .await?
            .ok_or(Error::NotFound("client not found"))?;
        let mut next = ClientInput {
            name: record.name.clone(),
            confidential: Some(record.confidential),
            access_token_ttl: record
                .settings
                .access_token_ttl_secs
                .map(Duration::from_secs),
            settings: record.settings.clone(),
        };
        let given = &input.settings;
        for path in mask {
            let s = &mut next.settings;
            match path.as_str() {
                "name" => next.name = input.name.clone(),
                "redirect_uris" => s.redirect_uris = given.redirect_uris.clone(),
                "post_logout_redirect_uris" => {
                    s.post_logout_redirect_uris = given.post_logout_redirect_uris.clone();
                }
                "grant_types" => s.grant_types = given.grant_types.clone(),
                "scopes" => s.scopes = given.scopes.clone(),
                "first_party" => s.first_party = given.first_party,
                "backchannel_logout_uri" => {
                    s.backchannel_logout_uri = given.backchannel_logout_uri.clone();
                }
                "id_token_signed_response_alg" => s.id_token_alg = given.id_token_alg.clone(),
                "access_token_ttl" => next.access_token_ttl = input.access_token_ttl,
                _ => {}
            }
        }
        let next = with_defaults(next);
        let bad = validate(&next, record.confidential);
        if !bad.is_empty() {
            return Err(Error::InvalidArgument(bad));
        }
        record.name = next.name;
        record.settings = next.settings;
        record.updated_at = now();
        let updated = Event::new(
            &ClientUpdated {
                client_id: record.client_id.clone(),
                changed_fields: mask.to_vec(),
            },
            record.id,
        );
        if !self.store.update_client(&record, &[updated]).await? {
            return Err(Error::NotFound("client not found"));
        }
        self.auth.wake();
        Ok(record)
    }

    /// Deletes a client: its sessions end (with their events, so its access
    /// tokens are refused everywhere within a second), its codes, consents
    /// and pending requests go.
    pub async fn delete_client(&self, caller: &Caller, client_id: &str) -> Result<(), Error> {
        operator(caller)?;
        let record = self
            .store
            .get_client(client_id)
            .await?
            .ok_or(Error::NotFound("client not found"))?;
        let deleted = Event::new(
            &ClientDeleted {
                client_id: client_id.to_owned(),
            },
            record.id,
        );
        let event_for: EventFor<'_> = &client_gone;
        let ended = self
            .store
            .delete_client(client_id, now(), &[deleted], event_for)
            .await?
            .ok_or(Error::NotFound("client not found"))?;
        self.auth.wake();
        tracing::info!(client.id = %client_id, sessions = ended.len(), "OAuth client deleted");
        Ok(())
    }

    /// A new secret for a confidential client; the previous one keeps
    /// working for `previous_ttl` (default one hour, at most seven days).
    pub async fn rotate_secret(
        &self,
        caller: &Caller,
        client_id: &str,
        previous_ttl: Option<Duration>,
    ) -> Result<(ClientRecord, String), Error> {
        operator(caller)?;
        let ttl = previous_ttl.unwrap_or(DEFAULT_PREVIOUS_SECRET_TTL);
        if ttl > MAX_PREVIOUS_SECRET_TTL {
            return Err(Error::invalid(
                "previous_secret_ttl",
                "must be at most seven days",
            ));
        }
        let mut record = self
            .store
            .get_client(client_id)
            .await?
            .ok_or(Error::NotFound("client not found"))?;
        if !record.confidential {
            return Err(Error::invalid(
                "client_id",
                "a public client has no secret to rotate",
            ));
        }
        let (secret, secret_hash) = new_secret()?;
        let now = now();
        let until = now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::zero());
        record.previous_secret_hash = if ttl.is_zero() {
            None
        } else {
            record.secret_hash.take()
        };
        record.previous_secret_expires_at = record.previous_secret_hash.as_ref().map(|_| until);
        record.secret_hash = Some(secret_hash);
        record.updated_at = now;
        let rotated = Event::new(
            &ClientSecretRotated {
                client_id: client_id.to_owned(),
                previous_secret_expire_time: record
                    .previous_secret_expires_at
                    .map_or(0, |t| t.timestamp()),
            },
            record.id,
        );
        if !self.store.update_client(&record, &[rotated]).await? {
            return Err(Error::NotFound("client not found"));
        }
        self.auth.wake();
        Ok((record, secret))
    }

    /// The client a token, device, introspection or revocation request
    /// comes from, if it proves who it is: a confidential client with its
    /// secret (the current one, or the previous within its overlap), a public
    /// one with none.
    pub async fn authenticate_client(
        &self,
        auth: &ClientAuth,
    ) -> Result<Result<ClientRecord, OAuthFail>, Error> {
        let ClientAuth {
            id: client_id,
            secret,
            method,
        } = auth;
        let refused = || {
            Ok(Err(OAuthFail::new(
                "invalid_client",
                "client authentication failed",
            )))
        };
        if client_id.is_empty() || client_id.len() > 64 {
            return refused();
        }
        let Some(client) = self.store.get_client(client_id).await? else {
            return refused();
        };
        let method_ok = match method.as_str() {
            "" => true,
            "none" => secret.is_empty(),
            "client_secret_basic" | "client_secret_post" => !secret.is_empty(),
            _ => false,
        };
        if !method_ok {
            return refused();
        }
        if !client.confidential {
            // A public client has no secret: one presented is a mistake
            // (or an attack) and is refused, not ignored.
            return if secret.is_empty() {
                Ok(Ok(client))
            } else {
                refused()
            };
        }
        if secret.is_empty() || secret.len() > 256 {
            return refused();
        }
        let presented = hash(secret);
        let current = client
            .secret_hash
            .as_deref()
            .is_some_and(|h| same(h, &presented));
        let previous = secret_still_valid(&client, now())
            && client
                .previous_secret_hash
                .as_deref()
                .is_some_and(|h| same(h, &presented));
        if current | previous {
            Ok(Ok(client))
        } else {
            refused()
        }
    }
}

/// How a client authenticates at the token, device, introspection and
/// revocation endpoints (RFC 6749 §2.3): its id, the method it used and the
/// secret that method carried (empty for a public client).
#[derive(Clone, Default)]
pub struct ClientAuth {
    pub id: String,
    pub secret: String,
    /// `client_secret_basic`, `client_secret_post`, `none`, or empty.
    pub method: String,
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAuth")
            .field("id", &self.id)
            .field("method", &self.method)
            .field(
                "secret",
                &if self.secret.is_empty() {
                    ""
                } else {
                    "<redacted>"
                },
            )
            .finish()
    }
}

/// Whether the client's previous secret is still within its overlap.
fn secret_still_valid(client: &ClientRecord, at: DateTime<Utc>) -> bool {
    client.previous_secret_expires_at.is_some_and(|t| t > at)
}

#[cfg(test)]
mod tests;
