//! What relying parties ask of tokens after the grant: introspection (RFC
//! 7662), revocation (RFC 7009), UserInfo; RP-initiated logout; and the
//! consents a user gave (ConsentService).

use super::clients::ClientAuth;
use super::{
    Answer, OAuthCore, OAuthFail,
    clients::client_gone,
    same,
    store::{BrowserSession, ClientRecord, ConsentRecord, EventFor},
};
use crate::error::Error;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use suite_events::Event;
use suite_grpc::paging::Paging;
use suite_proto::{
    auth::{ConsentRevoked, RevocationReason},
    time::now,
};
use suite_tokens::{Caller, Claims};
use uuid::Uuid;

/// `ListConsents` pages.
const CONSENTS_PAGING: Paging = Paging::new("k1:");

/// What introspection says of an active token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Introspection {
    pub scope: String,
    pub client_id: String,
    pub username: String,
    pub token_type: &'static str,
    pub exp: i64,
    pub iat: i64,
    pub sub: String,
    pub aud: Vec<String>,
    pub iss: String,
    pub jti: String,
    pub sid: String,
}

/// The standard claims UserInfo returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    pub sub: String,
    pub name: Option<String>,
    pub preferred_username: Option<String>,
    pub updated_at: Option<i64>,
    pub email: Option<String>,
    pub email_verified: Option<bool>,
}

/// An RP-initiated logout request.
#[derive(Debug, Clone, Default)]
pub struct EndSessionParams {
    pub id_token_hint: String,
    pub client_id: String,
    pub post_logout_redirect_uri: String,
    pub state: String,
    pub browser_session: String,
    pub browser_binding: String,
    pub confirmed: bool,
    pub csrf_token: String,
}

/// What RP-initiated logout shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndSession {
    Redirect(String),
    SignedOut,
    /// Ask first: (csrf token, client name, username).
    Confirm {
        csrf_token: String,
        client_name: String,
        username: String,
    },
    Error(OAuthFail),
}

/// A consent with its client's name.
#[derive(Debug, Clone)]
pub struct ConsentView {
    pub consent: ConsentRecord,
    pub client_name: String,
}

/// The event of a session ended by its user (logout, a revoked token).
fn by_user(id: Uuid, user: Uuid) -> Event {
    Event::new(
        &suite_proto::auth::SessionRevoked {
            session_id: id.to_string(),
            user_id: user.to_string(),
            reason: RevocationReason::ByUser.into(),
        },
        user,
    )
}

/// The sign-out confirmation's CSRF token: bound to the browser's binding
/// and session cookies, which a forging site can read neither of.
fn logout_csrf(binding: &str, session: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"suite-logout\0");
    h.update(binding.as_bytes());
    h.update(b"\0");
    h.update(session.as_bytes());
    URL_SAFE_NO_PAD.encode(h.finalize())
}

impl OAuthCore {
    /// The claims of one of our access tokens, if its signature and claims
    /// hold (whatever its session says).
    fn access_claims(&self, token: &str) -> Option<Claims> {
        let header = suite_tokens::rules::inspect_header(token).ok()?;
        let key = self.access_keys.get(&header.kid)?;
        suite_tokens::rules::verify_with(token, key, &self.access_rules).ok()
    }

    /// The claims of a live access token: signed by us, unexpired, and
    /// (for a session's token) its session not ended.
    async fn live_access(&self, token: &str) -> Result<Option<Claims>, Error> {
        let Some(claims) = self.access_claims(token) else {
            return Ok(None);
        };
        if claims
            .roles
            .iter()
            .any(|r| r == suite_tokens::roles::SERVICE)
        {
            // Internal tokens are nobody's business here.
            return Ok(None);
        }
        if let Some(sid) = &claims.sid {
            let Ok(id) = Uuid::parse_str(sid) else {
                return Ok(None);
            };
            match self.auth.session(id).await? {
                Some(s) if self.auth.session_live(&s) => {}
                _ => return Ok(None),
            }
        }
        Ok(Some(claims))
    }

    /// RFC 7662 introspection for an authenticated client; `None`: inactive.
    pub async fn introspect(
        &self,
        auth: &ClientAuth,
        token: &str,
    ) -> Answer<Option<Introspection>> {
        let client = match self.authenticate_client(auth).await? {
            Ok(c) => c,
            Err(refused) => return Ok(Err(refused)),
        };
        if let Some(c) = self.live_access(token).await? {
            let username = match Uuid::parse_str(&c.sub) {
                Ok(user) if c.client_id.as_deref() != Some(c.sub.as_str()) => self
                    .auth
                    .users()
                    .status(user)
                    .await?
                    .map(|s| s.username)
                    .unwrap_or_default(),
                _ => String::new(),
            };
            return Ok(Ok(Some(Introspection {
                scope: c.scope.clone().unwrap_or_default(),
                client_id: c.client_id.clone().unwrap_or_default(),
                username,
                token_type: "access_token",
                exp: c.exp,
                iat: c.iat,
                aud: match &c.aud {
                    suite_tokens::Audience::One(a) => vec![a.clone()],
                    suite_tokens::Audience::Many(a) => a.clone(),
                },
                iss: c.iss.clone(),
                jti: c.jti.clone(),
                sid: c.sid.clone().unwrap_or_default(),
                sub: c.sub,
            })));
        }
        // A refresh token, only to the client it was issued to.
        if let Some((record, session)) = self.auth.peek_refresh(token).await?
            && record.retired_at.is_none()
            && self.auth.session_live(&session)
            && session.client_id.as_deref() == Some(client.client_id.as_str())
        {
            return Ok(Ok(Some(Introspection {
                scope: session.scope.clone().unwrap_or_default(),
                client_id: client.client_id,
                token_type: "refresh_token",
                exp: session.expires_at.timestamp(),
                iat: record.created_at.timestamp(),
                sub: session.user_id.to_string(),
                iss: self.auth.settings().issuer.clone(),
                sid: session.id.to_string(),
                ..Introspection::default()
            })));
        }
        Ok(Ok(None))
    }

    /// RFC 7009 revocation: a token of this client ends its session (with
    /// the revocation event, so its access tokens die everywhere within a
    /// second). Unknown or foreign tokens are not an error.
    pub async fn revoke(&self, auth: &ClientAuth, token: &str) -> Result<Option<OAuthFail>, Error> {
        let client = match self.authenticate_client(auth).await? {
            Ok(c) => c,
            Err(refused) => return Ok(Some(refused)),
        };
        let mut session = None;
        if let Some((_, s)) = self.auth.peek_refresh(token).await? {
            session = Some(s);
        } else if let Some(claims) = self.access_claims(token)
            && let Some(sid) = claims.sid.as_deref().and_then(|s| Uuid::parse_str(s).ok())
        {
            session = self.auth.session(sid).await?;
        }
        if let Some(s) = session
            && s.client_id.as_deref() == Some(client.client_id.as_str())
            && s.revoked_at.is_none()
        {
            self.auth
                .end_session(s.id, s.user_id, RevocationReason::ByUser)
                .await?;
            tracing::info!(client.id = %client.client_id, session.id = %s.id, "token revoked");
        }
        Ok(None)
    }

    /// UserInfo: the claims the token's scopes allow.
    pub async fn user_info(&self, access_token: &str) -> Answer<UserInfo> {
        let refused = |error: &'static str, why: &str| Ok(Err(OAuthFail::new(error, why)));
        let Some(claims) = self.live_access(access_token).await? else {
            return refused(
                "invalid_token",
                "the access token is invalid, expired or revoked",
            );
        };
        let scopes = suite_tokens::scope_list(claims.scope.as_deref().unwrap_or_default());
        let wants = |s: &str| scopes.iter().any(|x| x == s);
        if !wants("openid") {
            return refused("insufficient_scope", "the token was not granted openid");
        }
        let Ok(user_id) = Uuid::parse_str(&claims.sub) else {
            return refused("invalid_token", "the token names no user");
        };
        let Some(user) = self.auth.users().profile(user_id).await? else {
            return refused("invalid_token", "the user no longer exists");
        };
        let mut info = UserInfo {
            sub: claims.sub.clone(),
            ..UserInfo::default()
        };
        if wants("profile") {
            info.name = (!user.display_name.is_empty()).then(|| user.display_name.clone());
            info.preferred_username = Some(user.username.clone());
            info.updated_at = user.update_time.as_ref().map(|t| t.seconds);
        }
        if wants("email") {
            info.email = Some(user.email.clone());
            // True only once the user followed a mailed link to it.
            info.email_verified = Some(user.email_verified);
        }
        Ok(Ok(info))
    }

    /// RP-initiated logout.
    pub async fn end_session(&self, p: EndSessionParams) -> Result<(EndSession, bool), Error> {
        let page = |why: &str| {
            Ok((
                EndSession::Error(OAuthFail::new("invalid_request", why)),
                false,
            ))
        };
        let mut client_id = p.client_id.clone();
        // The hint's subject, once it proved to be one of our ID tokens.
        let hinted = if p.id_token_hint.is_empty() {
            None
        } else {
            let Some((aud, sub)) = self.id_token_audience(&p.id_token_hint).await else {
                return page("id_token_hint is not an ID token of this provider");
            };
            if !client_id.is_empty() && client_id != aud {
                return page("id_token_hint was issued to another client");
            }
            client_id = aud;
            Some(sub)
        };
        let client: Option<ClientRecord> = if client_id.is_empty() || client_id.len() > 64 {
            None
        } else {
            self.store.get_client(&client_id).await?
        };
        if !client_id.is_empty() && client.is_none() {
            return page("client_id is unknown");
        }
        let redirect = if p.post_logout_redirect_uri.is_empty() {
            None
        } else {
            // Never an open redirect: registered for a known client, exactly.
            match &client {
                Some(c)
                    if c.settings
                        .post_logout_redirect_uris
                        .contains(&p.post_logout_redirect_uri) =>
                {
                    let mut url = url::Url::parse(&p.post_logout_redirect_uri)
                        .map_err(|e| Error::Internal(e.to_string()))?;
                    if !p.state.is_empty() {
                        url.query_pairs_mut().append_pair("state", &p.state);
                    }
                    Some(url.to_string())
                }
                _ => return page("post_logout_redirect_uri is not registered for this client"),
            }
        };
        let done = |clear: bool| {
            Ok((
                redirect
                    .clone()
                    .map_or(EndSession::SignedOut, EndSession::Redirect),
                clear,
            ))
        };
        let now = now();
        let Some(session) = self.browser_session(&p.browser_session, now).await? else {
            return done(!p.browser_session.is_empty());
        };
        // A hint about this browser's user ends its session at once; one
        // about someone else asks first, as no hint does.
        if hinted.is_some_and(|sub| sub == session.user_id.to_string()) {
            self.end_browser(&session, now).await?;
            return done(true);
        }
        let csrf = logout_csrf(&p.browser_binding, &p.browser_session);
        if p.confirmed {
            if p.browser_binding.is_empty() || !same(&csrf, &p.csrf_token) {
                return page("this form does not belong to this browser");
            }
            self.end_browser(&session, now).await?;
            return done(true);
        }
        if p.browser_binding.is_empty() {
            return Err(Error::invalid(
                "browser_binding",
                "is required (the gateway's binding cookie)",
            ));
        }
        Ok((
            EndSession::Confirm {
                csrf_token: csrf,
                client_name: client.map(|c| c.name).unwrap_or_default(),
                username: session.username.clone(),
            },
            false,
        ))
    }

    /// Ends a browser session and the sessions opened from it.
    async fn end_browser(&self, session: &BrowserSession, at: DateTime<Utc>) -> Result<(), Error> {
        let event_for: EventFor<'_> = &by_user;
        let ended = self
            .store
            .end_browser_session(session.id, at, event_for)
            .await?;
        self.auth.wake();
        tracing::info!(user.id = %session.user_id, sessions = ended.len(), "signed out at the provider");
        Ok(())
    }

    /// The `aud` and `sub` of one of our ID tokens, its signature checked and its
    /// expiry ignored (a hint may be old).
    async fn id_token_audience(&self, token: &str) -> Option<(String, String)> {
        use jsonwebtoken::{Algorithm, DecodingKey, Validation};
        if token.len() > suite_tokens::rules::MAX_TOKEN_BYTES {
            return None;
        }
        let header = jsonwebtoken::decode_header(token).ok()?;
        let kid = header.kid?;
        let jwk = self
            .jwks
            .keys
            .iter()
            .find(|k| k.common.key_id.as_deref() == Some(&kid))?;
        if !matches!(
            header.alg,
            Algorithm::RS256 | Algorithm::ES256 | Algorithm::EdDSA
        ) || header
            .typ
            .as_deref()
            .is_some_and(|t| !t.eq_ignore_ascii_case("JWT"))
        {
            return None;
        }
        let key = DecodingKey::from_jwk(jwk).ok()?;
        let mut v = Validation::new(header.alg);
        v.set_issuer(&[self.oidc_issuer()]);
        v.validate_exp = false;
        v.validate_aud = false;
        v.set_required_spec_claims(&["iss", "aud", "sub"]);
        #[derive(serde::Deserialize)]
        struct Hint {
            aud: String,
            sub: String,
        }
        let token = token.to_owned();
        // RSA verification is CPU work: off the async threads.
        tokio::task::spawn_blocking(move || {
            jsonwebtoken::decode::<Hint>(&token, &key, &v)
                .ok()
                .map(|d| (d.claims.aud, d.claims.sub))
        })
        .await
        .ok()
        .flatten()
    }

    /// The consents of `user_id` (empty: the caller's).
    pub async fn list_consents(
        &self,
        caller: &Caller,
        page_size: i32,
        page_token: &str,
        user_id: &str,
    ) -> Result<(Vec<ConsentView>, String), Error> {
        let user = consent_owner(caller, user_id, "user:read")?;
        let page = CONSENTS_PAGING.page(page_size, page_token)?;
        let mut rows = self
            .store
            .list_consents(user, page.after, page.fetch())
            .await?;
        let next = CONSENTS_PAGING.finish(page, &mut rows, |c| c.id);
        let mut out = Vec::with_capacity(rows.len());
        for consent in rows {
            let client_name = self
                .store
                .get_client(&consent.client_id)
                .await?
                .map(|c| c.name)
                .unwrap_or_default();
            out.push(ConsentView {
                consent,
                client_name,
            });
        }
        Ok((out, next))
    }

    /// Withdraws a consent and ends the client's sessions of the user.
    pub async fn revoke_consent(
        &self,
        caller: &Caller,
        client_id: &str,
        user_id: &str,
    ) -> Result<(), Error> {
        let user = consent_owner(caller, user_id, "user:write")?;
        if client_id.is_empty() || client_id.len() > 64 {
            return Err(Error::invalid("client_id", "must name a client"));
        }
        let revoked = Event::new(
            &ConsentRevoked {
                user_id: user.to_string(),
                client_id: client_id.to_owned(),
            },
            user,
        );
        let event_for: EventFor<'_> = &client_gone;
        self.store
            .delete_consent(user, client_id, now(), &[revoked], event_for)
            .await?
            .ok_or(Error::NotFound("consent not found"))?;
        self.auth.wake();
        Ok(())
    }
}

/// Whose consents a call is about: the caller's own (with `scope` if an
/// OAuth token), or anyone's for an operator naming them.
fn consent_owner(caller: &Caller, user_id: &str, scope: &str) -> Result<Uuid, Error> {
    if !caller.has_scope(scope) {
        return Err(Error::PermissionDenied(
            "the token was not granted this scope",
        ));
    }
    if user_id.is_empty() {
        return caller.user_id().ok_or(Error::PermissionDenied(
            "consents belong to users; this token names no user",
        ));
    }
    let named = Uuid::parse_str(user_id)
        .map_err(|_| Error::invalid("user_id", "must be a user id (a UUID)"))?;
    if caller.user_id() != Some(named) && !caller.is_operator() {
        return Err(Error::PermissionDenied(
            "only admins may see another user's consents",
        ));
    }
    Ok(named)
}
