//! The transport-neutral verifier: a bearer token in, a typed [`Caller`] or
//! a [`TokenError`] out, against the trusted public keys and fixed rules.
//! A personal access token (`suitepat_…`) is checked for its checksum here,
//! then exchanged through an [`Exchange`] for the access token that stands
//! for it, which is verified as any other and cached.
//! The gRPC adapter is [`crate::grpc`]; the gateway maps errors to HTTP.

use crate::{
    claims::{Claims, TokenError, roles},
    jwks::KeyCache,
    keys::KeySet,
    pat,
    revocations::{self, Revocations},
    rules::{self, TokenRules},
};
use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use suite_proto::access::MethodAccess;
use uuid::Uuid;

/// How many verified tokens are remembered; past that the memory starts over.
const VERIFIED_CACHE_SIZE: usize = 4096;
/// How long a personal access token refused for good (unknown, revoked,
/// expired) is refused without asking again: a script retrying a dead
/// token costs no round trip per request.
const REFUSED_FOR: Duration = Duration::from_secs(5);
/// An exchanged token is exchanged again this long before its `exp`, so
/// what is forwarded never expires in flight.
const EXCHANGE_AGAIN_BEFORE_SECS: u64 = 30;

/// Who is calling, as a verified token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    User(UserCaller),
    /// An internal caller (a token with the `service` role), by its name.
    Service {
        name: String,
    },
    /// An OAuth client acting for itself (client credentials): its subject
    /// is its client id, and it holds only its granted scopes.
    Client {
        client_id: String,
        scopes: Vec<String>,
    },
}

/// A user's access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCaller {
    pub id: Uuid,
    pub roles: Vec<String>,
    /// The session (refresh-token family) the token was issued for.
    pub session: Option<Uuid>,
    /// The OAuth client the token was issued to, and the scopes it was
    /// granted; `None` for the suite's own first-party tokens, which allow
    /// whatever the user's roles allow.
    pub delegated: Option<Delegation>,
    /// How the user signed in (the token's `amr`).
    pub amr: Vec<String>,
    /// When (the token's `auth_time`, Unix seconds).
    pub auth_time: Option<i64>,
}

impl UserCaller {
    /// Whether the user signed in with a second factor at most `max_age_secs`
    /// ago (at `now`, Unix seconds): what changing credentials asks for.
    pub fn second_factor_within(&self, max_age_secs: i64, now: i64) -> bool {
        self.amr.iter().any(|m| m == "mfa")
            && self
                .auth_time
                .is_some_and(|t| t <= now && now - t <= max_age_secs)
    }
}

/// The scope an OAuth token of an admin needs to act as one.
pub const ADMIN_SCOPE: &str = "admin";

/// What an OAuth client, or a personal access token, was allowed to do
/// for a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delegation {
    pub grantee: Grantee,
    pub scopes: Vec<String>,
}

/// Who holds a delegation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grantee {
    /// An OAuth client, by its id.
    Client(String),
    /// A personal access token, by its id.
    PersonalToken(Uuid),
}

/// The scopes of a `scope` claim (space-separated, RFC 6749 section 3.3).
pub fn scope_list(scope: &str) -> Vec<String> {
    scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Caller {
    /// The claims of a verified token, typed: a service's token, or a
    /// user's whose subject and session are UUIDs.
    pub fn from_claims(claims: &Claims) -> Result<Self, TokenError> {
        Self::typed(claims).map_err(TokenError::Invalid)
    }

    fn typed(claims: &Claims) -> Result<Self, &'static str> {
        if claims.roles.iter().any(|r| r == roles::SERVICE) {
            if claims.client_id.is_some() || claims.scope.is_some() {
                return Err("a service token names no client");
            }
            return Ok(Self::Service {
                name: claims.sub.clone(),
            });
        }
        if claims.pat {
            return Self::personal(claims);
        }
        if let Some(client_id) = claims.client_id.as_deref()
            && client_id == claims.sub
        {
            if !claims.roles.is_empty() || claims.sid.is_some() {
                return Err("a client's own token carries no roles or session");
            }
            return Ok(Self::Client {
                client_id: client_id.to_owned(),
                scopes: scope_list(claims.scope.as_deref().unwrap_or_default()),
            });
        }
        let delegated = match (&claims.client_id, &claims.scope) {
            (None, None) => None,
            (Some(client_id), Some(scope)) => Some(Delegation {
                grantee: Grantee::Client(client_id.clone()),
                scopes: scope_list(scope),
            }),
            _ => return Err("client_id and scope come together"),
        };
        let id = Uuid::parse_str(&claims.sub).map_err(|_| "the subject is not a user id")?;
        let session = claims
            .sid
            .as_deref()
            .map(Uuid::parse_str)
            .transpose()
            .map_err(|_| "the session is not a session id")?;
        Ok(Self::User(UserCaller {
            id,
            roles: claims.roles.clone(),
            session,
            delegated,
            amr: claims.amr.clone(),
            auth_time: claims.auth_time,
        }))
    }

    /// A personal access token's exchanged token: its owner, holding only
    /// its scopes, its id as the session (so revoking it revokes this).
    fn personal(claims: &Claims) -> Result<Self, &'static str> {
        if claims.client_id.is_some() {
            return Err("a personal access token names no client");
        }
        let scope = claims
            .scope
            .as_deref()
            .ok_or("a personal access token carries its scopes")?;
        let id = Uuid::parse_str(&claims.sub).map_err(|_| "the subject is not a user id")?;
        let token = claims
            .sid
            .as_deref()
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or("a personal access token's id is its session")?;
        Ok(Self::User(UserCaller {
            id,
            roles: claims.roles.clone(),
            session: Some(token),
            delegated: Some(Delegation {
                grantee: Grantee::PersonalToken(token),
                scopes: scope_list(scope),
            }),
            amr: claims.amr.clone(),
            auth_time: None,
        }))
    }

    /// Whether the token allows what `scope` names: always for first-party
    /// user tokens and services; for OAuth tokens, only a granted scope.
    pub fn has_scope(&self, scope: &str) -> bool {
        match self {
            Self::User(UserCaller {
                delegated: None, ..
            })
            | Self::Service { .. } => true,
            Self::User(UserCaller {
                delegated: Some(d), ..
            }) => d.scopes.iter().any(|s| s == scope),
            Self::Client { scopes, .. } => scopes.iter().any(|s| s == scope),
        }
    }

    /// The user's id; `None` for a service.
    pub fn user_id(&self) -> Option<Uuid> {
        match self {
            Self::User(u) => Some(u.id),
            Self::Service { .. } | Self::Client { .. } => None,
        }
    }

    /// The session of a user's token.
    pub fn session(&self) -> Option<Uuid> {
        match self {
            Self::User(u) => u.session,
            Self::Service { .. } | Self::Client { .. } => None,
        }
    }

    /// A user with the admin role, whose token allows acting as one: a
    /// first-party token, or an OAuth token granted the `admin` scope.
    pub fn is_admin(&self) -> bool {
        matches!(self, Self::User(u) if u.roles.iter().any(|r| r == roles::ADMIN))
            && self.has_scope(ADMIN_SCOPE)
    }

    /// Whether the token allows calling a method whose rule (from the
    /// contract's table, [`suite_proto::access`]) is `access`. First-party
    /// user tokens and services' tokens keep their meaning: the method's own
    /// checks (roles, ownership) decide. An OAuth user token needs the
    /// method's scope; a client's own token acts for no user, and every
    /// method that needs a token needs one.
    pub fn may_call(&self, access: MethodAccess) -> Result<(), Refusal> {
        if access == MethodAccess::Open {
            return Ok(());
        }
        match self {
            Self::Service { .. }
            | Self::User(UserCaller {
                delegated: None, ..
            }) => Ok(()),
            Self::Client { .. } => Err(Refusal::NotAUser),
            Self::User(UserCaller {
                delegated: Some(_), ..
            }) => match access {
                MethodAccess::Scope(scope) if self.has_scope(scope) => Ok(()),
                MethodAccess::Scope(scope) => Err(Refusal::MissingScope(scope)),
                MethodAccess::Open | MethodAccess::FirstParty => Err(Refusal::FirstPartyOnly),
            },
        }
    }

    pub fn is_service(&self) -> bool {
        matches!(self, Self::Service { .. })
    }

    /// An admin, or the operator's suitectl (a service token it minted with
    /// the signing key, which could sign an admin's as well): whoever may act
    /// on every user. Other services' tokens are not: a leaked one of theirs
    /// changes nobody.
    pub fn is_operator(&self) -> bool {
        self.is_admin() || matches!(self, Self::Service { name } if name == roles::OPERATOR_SUBJECT)
    }
}

/// Why a verified caller may not call a method (a 403, not a 401: the token
/// is good, its grant too small).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// An OAuth token not granted the scope the method needs.
    MissingScope(&'static str),
    /// A client's own token (client credentials) on a method that acts for
    /// a user.
    NotAUser,
    /// An OAuth token on a method open to first-party and service tokens
    /// only.
    FirstPartyOnly,
}

impl Refusal {
    /// The scope that would have allowed the call, if one would.
    pub fn scope(&self) -> Option<&'static str> {
        match self {
            Self::MissingScope(scope) => Some(scope),
            Self::NotAUser | Self::FirstPartyOnly => None,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::MissingScope(scope) => {
                write!(f, "the access token was not granted the `{scope}` scope")
            }
            Self::NotAUser => f.write_str(
                "a client's own token (client credentials) acts for no user; this call needs a user's token",
            ),
            Self::FirstPartyOnly => f.write_str(
                "this call is not open to OAuth access tokens or personal access tokens: it needs a sign-in's own token",
            ),
        }
    }
}

/// Verifies bearer tokens against a key cache and fixed rules.
#[derive(Clone)]
pub struct Verifier {
    keys: KeyCache,
    /// Built once from the rules: verification runs on every call.
    validation: jsonwebtoken::Validation,
    /// Tokens already verified, so a client's repeated token costs a lookup,
    /// not a signature check (as Envoy's jwt_authn cache does).
    verified: Arc<Mutex<HashMap<Box<str>, Verified>>>,
    /// Sessions and users revoked recently; `None`: nothing is revoked
    /// before `exp` (a verifier fed no events).
    revocations: Option<Revocations>,
    /// An admin's token acts as an admin only if its sign-in had a second
    /// factor (ADMINS_NEED_SECOND_FACTOR); without one, as a plain user.
    admins_need_second_factor: bool,
    /// Where personal access tokens are exchanged; `None`: they are refused.
    exchange: Option<Arc<dyn Exchange>>,
    /// Personal access tokens exchanged, and those refused lately: apart,
    /// so a flood of made-up tokens never pushes out the good ones.
    exchanged: Arc<Mutex<HashMap<Box<str>, Verified>>>,
    refused: Arc<Mutex<HashMap<Box<str>, RefusedUntil>>>,
}

/// A refusal, and until when it stands.
type RefusedUntil = (Instant, Refused);

/// Exchanges a personal access token for an access token standing for it
/// (the auth service's `ExchangePersonalAccessToken`, or its own store).
pub trait Exchange: Send + Sync {
    /// The access token (a JWT this verifier accepts), or why none.
    fn exchange<'a>(
        &'a self,
        token: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<String, TokenError>> + Send + 'a>>;
}

/// Why a personal access token was refused, remembered for a while.
#[derive(Debug, Clone, Copy)]
enum Refused {
    Expired,
    Revoked,
    Invalid(&'static str),
}

impl Refused {
    /// A refusal worth remembering: not an outage, which passes.
    fn of(e: &TokenError) -> Option<Self> {
        match e {
            TokenError::Expired => Some(Self::Expired),
            TokenError::Revoked => Some(Self::Revoked),
            TokenError::Invalid(why) => Some(Self::Invalid(why)),
            TokenError::Rejected(_) | TokenError::Unavailable(_) => None,
        }
    }

    fn error(self) -> TokenError {
        match self {
            Self::Expired => TokenError::Expired,
            Self::Revoked => TokenError::Revoked,
            Self::Invalid(why) => TokenError::Invalid(why),
        }
    }
}

/// A token whose signature and claims passed, and the caller it names (or
/// why it names none).
struct Checked {
    claims: Claims,
    caller: Result<Caller, &'static str>,
    /// When it was issued, to the millisecond, for the revocations.
    issued: revocations::Millis,
    /// For a personal access token: the access token it was exchanged for,
    /// which the gateway forwards in its place.
    exchanged: Option<Arc<str>>,
}

/// A token that passed, and against which key set: when the keys change
/// (rotation, removal), every remembered token is checked again.
struct Verified {
    checked: Arc<Checked>,
    keys: Arc<KeySet>,
}

impl Verifier {
    pub fn new(keys: KeyCache, rules: TokenRules) -> Self {
        Self {
            keys,
            validation: rules.validation(),
            verified: Arc::default(),
            revocations: None,
            admins_need_second_factor: rules.admins_need_second_factor,
            exchange: None,
            exchanged: Arc::default(),
            refused: Arc::default(),
        }
    }

    /// The verifier, accepting personal access tokens too: each is
    /// exchanged through `exchange` once, and the answer kept until a
    /// little before it expires (revocations refuse it at once all the
    /// same: its session is the token).
    pub fn with_exchange(mut self, exchange: Arc<dyn Exchange>) -> Self {
        self.exchange = Some(exchange);
        self
    }

    /// The verifier, refusing also what `revocations` holds.
    pub fn with_revocations(mut self, revocations: Revocations) -> Self {
        self.revocations = Some(revocations);
        self
    }

    pub fn revocations(&self) -> Option<&Revocations> {
        self.revocations.as_ref()
    }

    pub fn keys(&self) -> &KeyCache {
        &self.keys
    }

    /// The caller a token names.
    pub async fn caller(&self, token: &str) -> Result<Caller, TokenError> {
        self.caller_until(token).await.map(|(caller, _)| caller)
    }

    /// The caller a token names, and its `exp`.
    pub async fn caller_until(&self, token: &str) -> Result<(Caller, i64), TokenError> {
        self.lasting(token)
            .await
            .map(|lasting| (lasting.caller, lasting.exp))
    }

    /// The caller a token names, for a call that lasts (a stream): it must
    /// end when the token does, at `exp` or at its revocation.
    pub async fn lasting(&self, token: &str) -> Result<Lasting, TokenError> {
        let checked = self.check(token).await?;
        let caller = checked.caller.clone().map_err(TokenError::Invalid)?;
        self.refuse_revoked(&caller, checked.issued)?;
        Ok(Lasting {
            caller,
            exp: checked.claims.exp,
            issued: checked.issued,
            revocations: self.revocations.clone(),
            exchanged: checked.exchanged.clone(),
        })
    }

    /// The claims of a token, as signed (whoever they name).
    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let checked = self.check(token).await?;
        if let Ok(caller) = &checked.caller {
            self.refuse_revoked(caller, checked.issued)?;
        }
        Ok(checked.claims.clone())
    }

    /// `caller`, without the admin role if admins need a second factor and
    /// its sign-in had none: it may still act on its own user (and set up
    /// the factor), never on others.
    fn admitted(&self, caller: Caller) -> Caller {
        match caller {
            Caller::User(mut u)
                if self.admins_need_second_factor && !u.amr.iter().any(|m| m == "mfa") =>
            {
                u.roles.retain(|r| r != roles::ADMIN);
                Caller::User(u)
            }
            other => other,
        }
    }

    /// A user's token issued before a revocation that concerns it is refused.
    fn refuse_revoked(
        &self,
        caller: &Caller,
        issued: revocations::Millis,
    ) -> Result<(), TokenError> {
        match (&self.revocations, caller) {
            (Some(r), Caller::User(u)) if r.refuses(u.id, u.session, issued) => {
                Err(TokenError::Revoked)
            }
            _ => Ok(()),
        }
    }

    /// The token's checked form, shared with the cache: a remembered token
    /// costs a lookup and a reference count, and each caller clones only
    /// the part it asks for.
    async fn check(&self, token: &str) -> Result<Arc<Checked>, TokenError> {
        if pat::is_personal(token) {
            return self.check_personal(token).await;
        }
        let current = self.keys.keys().await;
        if let Some(found) = remembered(&self.verified, token, &current, 0) {
            return Ok(found);
        }
        let (checked, keys) = self.check_jwt(token, None).await?;
        remember(&self.verified, token, checked.clone(), keys);
        Ok(checked)
    }

    /// A personal access token's checked form: the checksum first (a typo
    /// or a made-up token costs nothing more), then what it was exchanged
    /// for, from the cache or the exchange.
    async fn check_personal(&self, token: &str) -> Result<Arc<Checked>, TokenError> {
        if !pat::check(token) {
            return Err(TokenError::Invalid("malformed personal access token"));
        }
        let Some(exchange) = &self.exchange else {
            return Err(TokenError::Invalid(
                "personal access tokens are not accepted here",
            ));
        };
        let current = self.keys.keys().await;
        if let Some(found) =
            remembered(&self.exchanged, token, &current, EXCHANGE_AGAIN_BEFORE_SECS)
        {
            return Ok(found);
        }
        if let Some(refused) = self.refused_lately(token) {
            return Err(refused.error());
        }
        let outcome = match exchange.exchange(token).await {
            Ok(jwt) => {
                let jwt: Arc<str> = jwt.into();
                self.check_jwt(&jwt, Some(jwt.clone())).await
            }
            Err(e) => Err(e),
        };
        match outcome {
            Ok((checked, keys)) => {
                remember(&self.exchanged, token, checked.clone(), keys);
                Ok(checked)
            }
            Err(e) => {
                if let (Some(refused), Ok(mut map)) = (Refused::of(&e), self.refused.lock()) {
                    if map.len() >= VERIFIED_CACHE_SIZE {
                        map.clear();
                    }
                    map.insert(token.into(), (Instant::now() + REFUSED_FOR, refused));
                }
                Err(e)
            }
        }
    }

    /// Why `token` was refused, if it was a moment ago.
    fn refused_lately(&self, token: &str) -> Option<Refused> {
        let mut map = self.refused.lock().ok()?;
        let (until, refused) = *map.get(token)?;
        if Instant::now() < until {
            return Some(refused);
        }
        map.remove(token);
        None
    }

    /// A JWT's signature and claims checked, and the key set that did it.
    async fn check_jwt(
        &self,
        token: &str,
        exchanged: Option<Arc<str>>,
    ) -> Result<(Arc<Checked>, Arc<KeySet>), TokenError> {
        let header = rules::inspect_header(token)?;
        let keys = self.keys.keys_for(&header.kid).await;
        let key = keys
            .get(&header.kid)
            .ok_or(TokenError::Invalid("unknown key id"))?;
        let claims = rules::verify_with(token, key, &self.validation)?;
        let checked = Arc::new(Checked {
            caller: Caller::typed(&claims).map(|c| self.admitted(c)),
            issued: revocations::issued_millis(&claims.jti, claims.iat),
            claims,
            exchanged,
        });
        Ok((checked, keys))
    }
}

type Remembered = Mutex<HashMap<Box<str>, Verified>>;

/// Keeps `checked` as `token`'s, emptying the cache first if it is full.
fn remember(cache: &Remembered, token: &str, checked: Arc<Checked>, keys: Arc<KeySet>) {
    if let Ok(mut map) = cache.lock() {
        if map.len() >= VERIFIED_CACHE_SIZE {
            map.clear();
        }
        map.insert(token.into(), Verified { checked, keys });
    }
}

/// A token verified before, against the current keys and more than
/// `margin_secs` from its `exp` (no leeway: a remembered token never
/// outlives `exp`).
fn remembered(
    cache: &Remembered,
    token: &str,
    current: &Arc<KeySet>,
    margin_secs: u64,
) -> Option<Arc<Checked>> {
    let mut map = cache.lock().ok()?;
    let entry = map.get(token)?;
    let now = jsonwebtoken::get_current_timestamp();
    if Arc::ptr_eq(&entry.keys, current)
        && u64::try_from(entry.checked.claims.exp).is_ok_and(|exp| now + margin_secs < exp)
    {
        return Some(entry.checked.clone());
    }
    map.remove(token);
    None
}

/// A verified token held by a call that lasts: who it names, and what ends
/// it.
#[derive(Debug, Clone)]
pub struct Lasting {
    pub caller: Caller,
    /// Unix seconds.
    pub exp: i64,
    issued: revocations::Millis,
    revocations: Option<Revocations>,
    /// For a personal access token: the access token standing for it, to
    /// forward to the services in its place.
    pub exchanged: Option<Arc<str>>,
}

impl Lasting {
    /// Completes when the token may no longer be used, with why: its `exp`
    /// passes ([`TokenError::Expired`]), or a revocation refuses it
    /// ([`TokenError::Revoked`]: a logout, a password or roles change, a
    /// deletion).
    pub async fn ended(&self) -> TokenError {
        let expired = tokio::time::sleep_until(self.expires_at());
        let revoked = async {
            match (&self.revocations, &self.caller) {
                (Some(set), Caller::User(u)) => set.refused(u.id, u.session, self.issued).await,
                // A service's token is revoked by no event.
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            () = expired => TokenError::Expired,
            () = revoked => TokenError::Revoked,
        }
    }

    /// The instant of `exp` on this process's clock.
    pub fn expires_at(&self) -> tokio::time::Instant {
        let left =
            u64::try_from(self.exp.saturating_sub(revocations::now_millis() / 1000)).unwrap_or(0);
        let now = tokio::time::Instant::now();
        now.checked_add(std::time::Duration::from_secs(left))
            // Too far to represent: as good as never.
            .unwrap_or_else(|| now + std::time::Duration::from_secs(100 * 365 * 86_400))
    }
}

/// The token of an `Authorization: Bearer <token>` value (scheme
/// case-insensitive); `None` if the value is not a bearer token.
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::Audience;

    #[test]
    fn bearer_scheme_is_case_insensitive_and_needs_a_token() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer"), None);
    }

    fn claims(sub: &str, roles: &[&str], sid: Option<&str>) -> Claims {
        Claims {
            iss: "i".into(),
            aud: Audience::One("a".into()),
            sub: sub.into(),
            exp: 0,
            iat: 0,
            nbf: 0,
            jti: "j".into(),
            sid: sid.map(str::to_owned),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            client_id: None,
            scope: None,
            amr: Vec::new(),
            auth_time: None,
            pat: false,
        }
    }

    #[test]
    fn a_personal_tokens_exchanged_token_is_its_owner_with_its_scopes_only() {
        let id = Uuid::now_v7();
        let token = Uuid::now_v7();
        let exchanged = Claims {
            scope: Some("user:read".into()),
            pat: true,
            auth_time: Some(1),
            ..claims(
                &id.to_string(),
                &["user", "admin"],
                Some(&token.to_string()),
            )
        };
        let Ok(caller) = Caller::from_claims(&exchanged) else {
            panic!("refused");
        };
        let Caller::User(user) = &caller else {
            panic!("not a user: {caller:?}");
        };
        assert_eq!(user.session, Some(token));
        assert_eq!(
            user.delegated,
            Some(Delegation {
                grantee: Grantee::PersonalToken(token),
                scopes: vec!["user:read".into()],
            })
        );
        // Never a sign-in: no step-up with it, whatever it claims.
        assert_eq!(user.auth_time, None);
        // Its owner is an admin; without the scope it acts as none.
        assert!(!caller.is_admin());
        assert_eq!(caller.may_call(MethodAccess::Scope("user:read")), Ok(()));
        assert_eq!(
            caller.may_call(MethodAccess::Scope("user:write")),
            Err(Refusal::MissingScope("user:write"))
        );
        assert_eq!(
            caller.may_call(MethodAccess::FirstParty),
            Err(Refusal::FirstPartyOnly)
        );
        // Malformed: without its scopes, without its id, naming a client.
        for bad in [
            Claims {
                scope: None,
                ..exchanged.clone()
            },
            Claims {
                sid: None,
                ..exchanged.clone()
            },
            Claims {
                client_id: Some("app".into()),
                ..exchanged.clone()
            },
        ] {
            assert!(Caller::from_claims(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn callers_are_typed_from_their_claims() {
        let id = Uuid::now_v7();
        let sid = Uuid::now_v7();
        let user = Caller::from_claims(&claims(
            &id.to_string(),
            &["user", "admin"],
            Some(&sid.to_string()),
        ));
        assert!(
            matches!(&user, Ok(c) if c.user_id() == Some(id) && c.session() == Some(sid) && c.is_admin())
        );
        let service = Caller::from_claims(&claims("suite-auth", &["service"], None));
        assert!(
            matches!(&service, Ok(c) if c.is_service() && c.user_id().is_none() && !c.is_admin())
        );
        assert!(Caller::from_claims(&claims("not-a-uuid", &["user"], None)).is_err());
        assert!(Caller::from_claims(&claims(&id.to_string(), &["user"], Some("x"))).is_err());
    }

    fn oauth(sub: &str, roles: &[&str], client: Option<&str>, scope: Option<&str>) -> Claims {
        Claims {
            client_id: client.map(str::to_owned),
            scope: scope.map(str::to_owned),
            ..claims(sub, roles, None)
        }
    }

    #[test]
    fn a_clients_own_token_is_a_client_with_its_scopes() {
        let caller = Caller::from_claims(&oauth("app", &[], Some("app"), Some("user:read  x")));
        assert_eq!(
            caller.ok(),
            Some(Caller::Client {
                client_id: "app".into(),
                scopes: vec!["user:read".into(), "x".into()],
            })
        );
        // No scope claim: a client holding nothing.
        let bare = Caller::from_claims(&oauth("app", &[], Some("app"), None));
        assert!(matches!(bare, Ok(Caller::Client { scopes, .. }) if scopes.is_empty()));
    }

    #[test]
    fn a_delegated_token_is_its_user_with_the_clients_scopes() {
        let id = Uuid::now_v7();
        let caller = Caller::from_claims(&oauth(
            &id.to_string(),
            &["user"],
            Some("app"),
            Some("openid user:read"),
        ));
        let Ok(Caller::User(user)) = &caller else {
            panic!("not a user: {caller:?}");
        };
        assert_eq!(user.id, id);
        assert_eq!(
            user.delegated,
            Some(Delegation {
                grantee: Grantee::Client("app".into()),
                scopes: vec!["openid".into(), "user:read".into()],
            })
        );
        let caller = caller.as_ref().ok();
        assert!(caller.is_some_and(|c| c.has_scope("user:read") && !c.has_scope("user:write")));
    }

    #[test]
    fn malformed_combinations_are_refused() {
        let id = Uuid::now_v7().to_string();
        // A client id without its scope, or a scope without its client.
        assert!(Caller::from_claims(&oauth(&id, &["user"], Some("app"), None)).is_err());
        assert!(Caller::from_claims(&oauth(&id, &["user"], None, Some("user:read"))).is_err());
        // A service token naming a client.
        assert!(Caller::from_claims(&oauth("svc", &["service"], Some("app"), None)).is_err());
        assert!(Caller::from_claims(&oauth("svc", &["service"], None, Some("admin"))).is_err());
        // A client's own token with roles or a session.
        assert!(
            Caller::from_claims(&oauth("app", &["admin"], Some("app"), Some("admin"))).is_err()
        );
        let with_sid = Claims {
            sid: Some(Uuid::now_v7().to_string()),
            ..oauth("app", &[], Some("app"), Some("x"))
        };
        assert!(Caller::from_claims(&with_sid).is_err());
        // A delegated token whose subject is not a user id.
        assert!(Caller::from_claims(&oauth("bob", &["user"], Some("app"), Some("x"))).is_err());
    }

    #[test]
    fn an_admins_oauth_token_acts_as_admin_only_with_the_admin_scope() {
        let id = Uuid::now_v7().to_string();
        let without = Caller::from_claims(&oauth(
            &id,
            &["user", "admin"],
            Some("app"),
            Some("user:read"),
        ));
        assert!(without.is_ok_and(|c| !c.is_admin() && !c.is_operator()));
        let with = Caller::from_claims(&oauth(&id, &["user", "admin"], Some("app"), Some("admin")));
        assert!(with.is_ok_and(|c| c.is_admin()));
        // Granted to a user without the role, the scope makes nobody an admin.
        let pretender = Caller::from_claims(&oauth(&id, &["user"], Some("app"), Some("admin")));
        assert!(pretender.is_ok_and(|c| !c.is_admin()));
    }

    #[test]
    fn methods_are_allowed_by_scope_for_oauth_tokens_only() {
        let id = Uuid::now_v7().to_string();
        let read = MethodAccess::Scope("user:read");
        let first_party = Caller::from_claims(&claims(&id, &["user"], None));
        assert!(first_party.is_ok_and(
            |c| c.may_call(read).is_ok() && c.may_call(MethodAccess::FirstParty).is_ok()
        ));
        let service = Caller::from_claims(&claims("suite-auth", &["service"], None));
        assert!(service.is_ok_and(|c| c.may_call(MethodAccess::FirstParty).is_ok()));

        let Ok(reader) =
            Caller::from_claims(&oauth(&id, &["user"], Some("app"), Some("user:read")))
        else {
            panic!("a delegated token is refused");
        };
        assert_eq!(reader.may_call(read), Ok(()));
        assert_eq!(reader.may_call(MethodAccess::Open), Ok(()));
        assert_eq!(
            reader.may_call(MethodAccess::Scope("user:write")),
            Err(Refusal::MissingScope("user:write"))
        );
        assert_eq!(
            reader.may_call(MethodAccess::FirstParty),
            Err(Refusal::FirstPartyOnly)
        );

        let Ok(client) = Caller::from_claims(&oauth("app", &[], Some("app"), Some("user:read")))
        else {
            panic!("a client's token is refused");
        };
        // Even holding the scope: the method acts for a user, and it is none.
        assert_eq!(client.may_call(read), Err(Refusal::NotAUser));
        assert_eq!(client.may_call(MethodAccess::Open), Ok(()));
    }
}
