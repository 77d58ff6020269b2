//! The token endpoint: authorization_code (with PKCE), refresh_token (the
//! session's rotation and reuse detection), client_credentials and the
//! device grant (`device.rs`); ID tokens signed with the client's algorithm.

use super::clients::ClientAuth;
use super::{
    Answer, OAuthCore, OAuthFail,
    authorize::pkce_shaped,
    same,
    store::{ClientRecord, CodeGrant, CodeRecord},
};
use crate::{
    core::{Issued, OAuthRefresh, OAuthSession},
    error::Error,
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::Serialize;
use sha2::{Digest, Sha256, Sha512};
use std::time::Duration;
use suite_events::Event;
use suite_proto::{auth::SessionReuseDetected, time::now};
use suite_tokens::{Audience, Claims, IdTokenAlg};
use uuid::Uuid;

/// How long an ID token is valid.
const ID_TOKEN_TTL_SECS: i64 = 3600;
/// Scopes about the user's identity: never for a client acting for itself.
const OIDC_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];

/// A token request, as the endpoint got it.
#[derive(Clone, Default)]
pub struct TokenParams {
    pub client: ClientAuth,
    pub grant_type: String,
    pub code: String,
    pub redirect_uri: String,
    pub code_verifier: String,
    pub refresh_token: String,
    pub scope: String,
    pub device_code: String,
}

/// Tokens issued.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    pub access_token: String,
    pub expires_in: i64,
    pub refresh_token: String,
    pub id_token: String,
    pub scope: String,
}

/// The claims of our ID tokens (OpenID Connect Core section 2).
#[derive(Debug, Serialize)]
struct IdClaims {
    iss: String,
    sub: String,
    aud: String,
    exp: i64,
    iat: i64,
    auth_time: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    nonce: String,
    azp: String,
    at_hash: String,
    sid: String,
    amr: Vec<String>,
    /// `mfa` after a second factor, else `pwd` (what `acr_values` asks for).
    acr: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_verified: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    preferred_username: Option<String>,
}

fn invalid_grant(why: &str) -> Answer<Tokens> {
    Ok(Err(OAuthFail::new("invalid_grant", why)))
}

/// The session a grant's redemption opened, its tokens not yet given out.
pub(super) struct GrantedSession {
    pub session_id: Uuid,
    issued: Issued,
    /// The scopes granted, space-separated.
    scope: String,
    username: String,
}

/// The PKCE S256 transform of a verifier.
fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// `at_hash`: the left half of the access token's hash, with the hash of
/// the ID token's algorithm (SHA-256 for RS256 and ES256; SHA-512 for
/// Ed25519, as OpenID's libraries compute it).
pub fn at_hash(access_token: &str, alg: &str) -> String {
    if alg == "EdDSA" {
        let digest = Sha512::digest(access_token.as_bytes());
        URL_SAFE_NO_PAD.encode(&digest[..32])
    } else {
        let digest = Sha256::digest(access_token.as_bytes());
        URL_SAFE_NO_PAD.encode(&digest[..16])
    }
}

impl OAuthCore {
    /// A client's access-token lifetime.
    pub(crate) fn access_ttl(&self, client: &ClientRecord) -> Duration {
        client
            .settings
            .access_token_ttl_secs
            .map_or(self.auth.settings().access_ttl, Duration::from_secs)
    }

    /// The token endpoint, counted by grant and outcome.
    pub async fn token(&self, p: TokenParams, user_agent: &str) -> Answer<Tokens> {
        let grant = match p.grant_type.as_str() {
            "authorization_code" => "authorization_code",
            "refresh_token" => "refresh_token",
            "client_credentials" => "client_credentials",
            super::device::DEVICE_GRANT => "device_code",
            _ => "other",
        };
        let answer = self.grant(p, user_agent).await;
        let outcome = match &answer {
            Ok(Ok(_)) => "issued",
            Ok(Err(f)) => f.error,
            Err(_) => "failed",
        };
        crate::metrics::metrics()
            .oauth_tokens
            .get_or_create(&crate::metrics::GrantLabels { grant, outcome })
            .inc();
        answer
    }

    async fn grant(&self, p: TokenParams, user_agent: &str) -> Answer<Tokens> {
        let client = match self.authenticate_client(&p.client).await? {
            Ok(client) => client,
            Err(refused) => return Ok(Err(refused)),
        };
        if !matches!(
            p.grant_type.as_str(),
            "authorization_code"
                | "refresh_token"
                | "client_credentials"
                | super::device::DEVICE_GRANT
        ) {
            return Ok(Err(OAuthFail::new(
                "unsupported_grant_type",
                "grant_type must be authorization_code, refresh_token, client_credentials \
                 or urn:ietf:params:oauth:grant-type:device_code",
            )));
        }
        if !client.settings.grant_types.contains(&p.grant_type) {
            return Ok(Err(OAuthFail::new(
                "unauthorized_client",
                "this client may not use this grant type",
            )));
        }
        match p.grant_type.as_str() {
            "authorization_code" => self.code_grant(&client, &p, user_agent).await,
            "refresh_token" => self.refresh_grant(&client, &p).await,
            super::device::DEVICE_GRANT => self.device_grant(&client, &p, user_agent).await,
            _ => self.client_credentials(&client, &p),
        }
    }

    async fn code_grant(
        &self,
        client: &ClientRecord,
        p: &TokenParams,
        user_agent: &str,
    ) -> Answer<Tokens> {
        if p.code.len() != 43 {
            return invalid_grant("the code is invalid, expired or used");
        }
        let code_hash = super::hash(&p.code);
        let Some(code) = self.store.get_code(&code_hash).await? else {
            return invalid_grant("the code is invalid, expired or used");
        };
        // Another client's code: refused, and left alone (its own client
        // may still redeem it).
        if code.client_id != client.client_id {
            return invalid_grant("the code was not issued to this client");
        }
        let now = now();
        if code.used_at.is_some() {
            self.code_replayed(&code).await?;
            return invalid_grant("the code is invalid, expired or used");
        }
        if code.expires_at <= now {
            return invalid_grant("the code is invalid, expired or used");
        }
        if p.redirect_uri != code.grant.redirect_uri {
            return invalid_grant("redirect_uri differs from the authorization request's");
        }
        if !pkce_shaped(&p.code_verifier)
            || !same(&s256(&p.code_verifier), &code.grant.code_challenge)
        {
            return invalid_grant("code_verifier does not match the code_challenge");
        }
        let opened = match self
            .open_granted_session(client, code.user_id, &code.grant, user_agent)
            .await?
        {
            Ok(opened) => opened,
            Err(refused) => return Ok(Err(refused)),
        };
        let session_id = opened.session_id;
        // The code is spent only once its session exists, and names it: a
        // concurrent redemption that loses this race finds that session and
        // ends it. (Spent first, a replay racing the session's creation
        // would find nothing to end, and the winner's tokens would live.)
        if !self.store.use_code(&code_hash, now, session_id).await? {
            self.end_losing_session(session_id, code.user_id).await?;
            if let Some(code) = self.store.get_code(&code_hash).await? {
                self.code_replayed(&code).await?;
            }
            return invalid_grant("the code is invalid, expired or used");
        }
        let tokens = self
            .granted_tokens(client, code.user_id, &code.grant, opened)
            .await?;
        tracing::info!(client.id = %client.client_id, user.id = %code.user_id, session.id = %session_id, "code exchanged");
        Ok(Ok(tokens))
    }

    /// The session a grant's redemption opens, before it spends the grant,
    /// if the sign-in the grant stands for still does: its browser session
    /// not ended (RP-initiated logout ends it), its user still there, and
    /// their sessions not cut off since.
    pub(super) async fn open_granted_session(
        &self,
        client: &ClientRecord,
        user_id: Uuid,
        grant: &CodeGrant,
        user_agent: &str,
    ) -> Answer<GrantedSession> {
        let no_longer_valid = || {
            Ok(Err(OAuthFail::new(
                "invalid_grant",
                "the sign-in is no longer valid",
            )))
        };
        let signed_in = self
            .store
            .get_browser_session(grant.browser_session_id)
            .await?;
        if signed_in.is_none_or(|b| b.revoked_at.is_some()) {
            return no_longer_valid();
        }
        let Some(status) = self.auth.users().status(user_id).await? else {
            return Ok(Err(OAuthFail::new(
                "invalid_grant",
                "the user no longer exists",
            )));
        };
        if status
            .sessions_valid_after
            .is_some_and(|cut| grant.auth_time < cut.timestamp())
        {
            return no_longer_valid();
        }
        let session_id = Uuid::now_v7();
        let scope = grant.scopes.join(" ");
        let issued = self
            .auth
            .start_oauth_session(OAuthSession {
                session_id,
                user_id,
                roles: status.roles,
                client_id: client.client_id.clone(),
                scope: scope.clone(),
                browser_session_id: Some(grant.browser_session_id),
                user_agent: user_agent.to_owned(),
                ttl: self.access_ttl(client),
                amr: grant.amr.join(" "),
            })
            .await?;
        Ok(Ok(GrantedSession {
            session_id,
            issued,
            scope,
            username: status.username,
        }))
    }

    /// A redemption's session lost the race to spend its code (or device
    /// code) to a concurrent one: ours never reached the client, so it ends
    /// with the winner's.
    pub(super) async fn end_losing_session(
        &self,
        session_id: Uuid,
        user_id: Uuid,
    ) -> Result<(), Error> {
        if let Some(ours) = self.auth.session(session_id).await? {
            let reuse = Event::new(
                &SessionReuseDetected {
                    session_id: session_id.to_string(),
                    user_id: user_id.to_string(),
                },
                user_id,
            );
            self.auth.revoke_with(&ours, reuse).await?;
        }
        Ok(())
    }

    /// The tokens of a spent grant (a code or an approved device code):
    /// the refresh token only for a client that may refresh and either is
    /// first-party or was granted `offline_access`, the ID token only for
    /// `openid`.
    pub(super) async fn granted_tokens(
        &self,
        client: &ClientRecord,
        user_id: Uuid,
        grant: &CodeGrant,
        opened: GrantedSession,
    ) -> Result<Tokens, Error> {
        let GrantedSession {
            issued,
            scope,
            username,
            ..
        } = opened;
        let refresh = client
            .settings
            .grant_types
            .iter()
            .any(|g| g == "refresh_token")
            && (client.settings.first_party || grant.scopes.iter().any(|s| s == "offline_access"));
        let id_token = if grant.scopes.iter().any(|s| s == "openid") {
            self.id_token_for(client, user_id, grant, &username, &issued.access_token)
                .await?
        } else {
            String::new()
        };
        Ok(Tokens {
            access_token: issued.access_token,
            expires_in: issued.expires_in,
            refresh_token: if refresh {
                issued.refresh_token
            } else {
                String::new()
            },
            id_token,
            scope,
        })
    }

    /// A used code came back: whoever holds it may have stolen it, so the
    /// tokens of its first exchange die (RFC 6749 section 4.1.2).
    async fn code_replayed(&self, code: &CodeRecord) -> Result<(), Error> {
        crate::metrics::metrics().authorization_code_reuse.inc();
        tracing::warn!(security_event = "authorization_code_reuse", client.id = %code.client_id, user.id = %code.user_id,
            "an authorization code was presented again; the tokens issued from it are revoked");
        if let Some(id) = code.session_id
            && let Some(session) = self.auth.session(id).await?
            && session.revoked_at.is_none()
        {
            let reuse = Event::new(
                &SessionReuseDetected {
                    session_id: id.to_string(),
                    user_id: code.user_id.to_string(),
                },
                code.user_id,
            );
            self.auth.revoke_with(&session, reuse).await?;
        }
        Ok(())
    }

    /// Signs the ID token of a code's (or an approved device's) exchange.
    pub(super) async fn id_token_for(
        &self,
        client: &ClientRecord,
        user_id: Uuid,
        grant: &CodeGrant,
        username: &str,
        access_token: &str,
    ) -> Result<String, Error> {
        let scopes = &grant.scopes;
        let wants = |s: &str| scopes.iter().any(|x| x == s);
        let profile = if wants("profile") || wants("email") {
            self.auth.users().profile(user_id).await?
        } else {
            None
        };
        let iat = now().timestamp();
        let alg = client.settings.id_token_alg.clone();
        let mut claims = IdClaims {
            iss: self.oidc_issuer().to_owned(),
            sub: user_id.to_string(),
            aud: client.client_id.clone(),
            exp: iat + ID_TOKEN_TTL_SECS,
            iat,
            auth_time: grant.auth_time,
            nonce: grant.nonce.clone(),
            azp: client.client_id.clone(),
            at_hash: at_hash(access_token, &alg),
            sid: grant.browser_session_id.to_string(),
            amr: grant.amr.clone(),
            acr: if grant.amr.iter().any(|m| m == "mfa") {
                super::authorize::MFA_ACR
            } else {
                "pwd"
            },
            email: None,
            email_verified: None,
            name: None,
            preferred_username: None,
        };
        if let Some(user) = profile {
            if wants("email") {
                claims.email = Some(user.email.clone());
                // True only once the user followed a mailed link to it.
                claims.email_verified = Some(user.email_verified);
            }
            if wants("profile") {
                claims.name = (!user.display_name.is_empty()).then(|| user.display_name.clone());
                claims.preferred_username = Some(user.username.clone());
            }
        } else if wants("profile") {
            claims.preferred_username = Some(username.to_owned());
        }
        self.sign_jwt(&alg, "JWT", claims).await
    }

    /// Signs claims with the ID-token key of `alg`, header `typ`, off the
    /// async threads (RSA): ID tokens and logout tokens.
    pub(super) async fn sign_jwt<T: Serialize + Send + 'static>(
        &self,
        alg: &str,
        typ: &'static str,
        claims: T,
    ) -> Result<String, Error> {
        let keys = self.auth.keys();
        let signer: Box<dyn FnOnce() -> Result<String, suite_tokens::KeyError> + Send> = match alg {
            "EdDSA" => {
                let key = keys.active().clone();
                Box::new(move || key.sign_as(typ, &claims))
            }
            "ES256" => {
                let key = keys
                    .id_token_key(IdTokenAlg::Es256)
                    .cloned()
                    .ok_or_else(|| Error::Internal("no ES256 key".into()))?;
                Box::new(move || key.sign_as(typ, &claims))
            }
            _ => {
                let key = keys
                    .id_token_key(IdTokenAlg::Rs256)
                    .cloned()
                    .ok_or_else(|| Error::Internal("no RS256 key".into()))?;
                Box::new(move || key.sign_as(typ, &claims))
            }
        };
        tokio::task::spawn_blocking(signer)
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
            .map_err(|e| Error::Internal(e.to_string()))
    }

    async fn refresh_grant(&self, client: &ClientRecord, p: &TokenParams) -> Answer<Tokens> {
        let Some((_, session)) = self.auth.peek_refresh(&p.refresh_token).await? else {
            return invalid_grant("the refresh token is invalid or expired");
        };
        if session.client_id.as_deref() != Some(client.client_id.as_str()) {
            return invalid_grant("the refresh token was not issued to this client");
        }
        let granted = suite_tokens::scope_list(session.scope.as_deref().unwrap_or_default());
        let asked = suite_tokens::scope_list(&p.scope);
        // Narrower is fine; wider never.
        if let Some(extra) = asked.iter().find(|s| !granted.contains(s)) {
            return Ok(Err(OAuthFail::new(
                "invalid_scope",
                format!("{extra:.64} was not granted"),
            )));
        }
        let scope = if asked.is_empty() { granted } else { asked }.join(" ");
        let refresh = OAuthRefresh {
            client_id: &client.client_id,
            ttl: self.access_ttl(client),
            scope: scope.clone(),
        };
        match self
            .auth
            .refresh_for(&p.refresh_token, Some(&refresh))
            .await
        {
            Ok(issued) => Ok(Ok(Tokens {
                access_token: issued.access_token,
                expires_in: issued.expires_in,
                refresh_token: issued.refresh_token,
                id_token: String::new(),
                scope,
            })),
            Err(Error::Unauthenticated(_) | Error::InvalidArgument(_)) => {
                invalid_grant("the refresh token is invalid or expired")
            }
            Err(e) => Err(e),
        }
    }

    fn client_credentials(&self, client: &ClientRecord, p: &TokenParams) -> Answer<Tokens> {
        if !client.confidential {
            return Ok(Err(OAuthFail::new(
                "unauthorized_client",
                "client credentials are for confidential clients",
            )));
        }
        let api: Vec<String> = client
            .settings
            .scopes
            .iter()
            .filter(|s| !OIDC_SCOPES.contains(&s.as_str()))
            .cloned()
            .collect();
        let asked = suite_tokens::scope_list(&p.scope);
        if let Some(bad) = asked.iter().find(|s| !api.contains(s)) {
            return Ok(Err(OAuthFail::new(
                "invalid_scope",
                format!("{bad:.64} is not an API scope of this client"),
            )));
        }
        let scope = if asked.is_empty() { api } else { asked }.join(" ");
        let settings = self.auth.settings();
        let ttl = self.access_ttl(client).as_secs() as i64;
        let now = now();
        let iat = now.timestamp();
        let claims = Claims {
            iss: settings.issuer.clone(),
            aud: Audience::One(settings.audience.clone()),
            sub: client.client_id.clone(),
            exp: iat + ttl,
            iat,
            nbf: iat,
            jti: Uuid::now_v7().to_string(),
            sid: None,
            roles: Vec::new(),
            client_id: Some(client.client_id.clone()),
            scope: Some(scope.clone()),
            amr: Vec::new(),
            auth_time: None,
            pat: false,
        };
        let access_token = self
            .auth
            .keys()
            .active()
            .sign(&claims)
            .map_err(|e| Error::Internal(e.to_string()))?;
        Ok(Ok(Tokens {
            access_token,
            expires_in: ttl,
            refresh_token: String::new(),
            id_token: String::new(),
            scope,
        }))
    }
}
