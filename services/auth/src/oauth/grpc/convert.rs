//! The provider's types to and from their messages: each conversion once,
//! so that an RPC is its call and nothing else.

use super::super::{
    OAuthFail,
    authorize::{AuthorizeParams, Next, Step},
    clients::{ClientAuth, ClientMetadata, Registered},
    device::DeviceAuthorization,
    introspect::{EndSession, EndSessionParams, Introspection, UserInfo},
    token::{TokenParams, Tokens},
};
use suite_proto::auth as pb;

pub(in crate::oauth) fn oauth_error(f: OAuthFail) -> pb::OAuthError {
    pb::OAuthError {
        error: f.error.into(),
        error_description: f.description,
    }
}

fn error_page(f: OAuthFail) -> pb::ErrorPage {
    pb::ErrorPage {
        error: f.error.into(),
        description: f.description,
    }
}

/// A protocol answer of the core as a response's `result`: what it grants,
/// or the refusal as the OAuth error every such result carries.
pub(super) fn outcome<T, R>(
    answer: Result<T, OAuthFail>,
    granted: impl FnOnce(T) -> R,
    refused: impl FnOnce(pb::OAuthError) -> R,
) -> Option<R> {
    Some(match answer {
        Ok(v) => granted(v),
        Err(f) => refused(oauth_error(f)),
    })
}

/// A missing `client` is a client that presented nothing (refused as such).
pub(super) fn client_auth(c: Option<pb::ClientAuthentication>) -> ClientAuth {
    let c = c.unwrap_or_default();
    ClientAuth {
        id: c.client_id,
        secret: c.client_secret,
        method: c.method,
    }
}

impl From<pb::AuthorizationParameters> for AuthorizeParams {
    fn from(p: pb::AuthorizationParameters) -> Self {
        Self {
            client_id: p.client_id,
            redirect_uri: p.redirect_uri,
            response_type: p.response_type,
            scope: p.scope,
            state: p.state,
            nonce: p.nonce,
            code_challenge: p.code_challenge,
            code_challenge_method: p.code_challenge_method,
            prompt: p.prompt,
            max_age: p.max_age,
            login_hint: p.login_hint,
            response_mode: p.response_mode,
            request_object: p.request_object,
            acr_values: p.acr_values,
        }
    }
}

impl From<pb::TokenRequest> for TokenParams {
    fn from(r: pb::TokenRequest) -> Self {
        Self {
            client: client_auth(r.client),
            grant_type: r.grant_type,
            code: r.code,
            redirect_uri: r.redirect_uri,
            code_verifier: r.code_verifier,
            refresh_token: r.refresh_token,
            scope: r.scope,
            device_code: r.device_code,
        }
    }
}

impl From<pb::EndSessionRequest> for EndSessionParams {
    fn from(r: pb::EndSessionRequest) -> Self {
        Self {
            id_token_hint: r.id_token_hint,
            client_id: r.client_id,
            post_logout_redirect_uri: r.post_logout_redirect_uri,
            state: r.state,
            browser_session: r.browser_session,
            browser_binding: r.browser_binding,
            confirmed: r.confirmed,
            csrf_token: r.csrf_token,
        }
    }
}

impl From<Next> for pb::AuthorizationStep {
    fn from(next: Next) -> Self {
        use pb::authorization_step::Step as S;
        let step = match next.step {
            Step::Redirect(uri) => S::RedirectUri(uri),
            Step::SignIn(p) => S::SignIn(pb::SignInPage {
                request_id: p.request_id,
                csrf_token: p.csrf_token,
                client_name: p.client_name,
                login_hint: p.login_hint,
                error: p.error,
                error_field: p.error_field,
                retry_after_secs: p.retry_after_secs,
                factor_challenge: p.factor_challenge,
                passkey_ceremony: p.passkey_ceremony,
                passkey_options_json: p.passkey_options_json,
            }),
            Step::Consent(p) => S::Consent(pb::ConsentPage {
                request_id: p.request_id,
                csrf_token: p.csrf_token,
                client_name: p.client_name,
                scopes: p
                    .scopes
                    .into_iter()
                    .map(|(scope, description)| pb::ScopeDescription {
                        scope,
                        description: description.into(),
                    })
                    .collect(),
                username: p.username,
                user_code: p.user_code,
            }),
            Step::Error(f) => S::Error(error_page(f)),
            Step::Device {
                client_name,
                approved,
            } => S::Device(pb::DeviceDecision {
                client_name,
                approved,
            }),
        };
        Self {
            step: Some(step),
            set_session: next
                .set_session
                .map(|(value, max_age_secs)| pb::BrowserSessionCookie {
                    value,
                    max_age_secs,
                }),
            clear_session: next.clear_session,
        }
    }
}

impl From<EndSession> for pb::end_session_response::Result {
    fn from(answer: EndSession) -> Self {
        match answer {
            EndSession::Redirect(uri) => Self::RedirectUri(uri),
            EndSession::SignedOut => Self::SignedOut(true),
            EndSession::Confirm {
                csrf_token,
                client_name,
                username,
            } => Self::Confirm(pb::SignOutConfirmPage {
                csrf_token,
                client_name,
                username,
            }),
            EndSession::Error(f) => Self::Error(error_page(f)),
        }
    }
}

impl From<Tokens> for pb::Tokens {
    fn from(t: Tokens) -> Self {
        Self {
            access_token: t.access_token,
            token_type: "Bearer".into(),
            expires_in: t.expires_in,
            refresh_token: t.refresh_token,
            id_token: t.id_token,
            scope: t.scope,
        }
    }
}

impl From<DeviceAuthorization> for pb::DeviceAuthorization {
    fn from(d: DeviceAuthorization) -> Self {
        Self {
            device_code: d.device_code,
            user_code: d.user_code,
            verification_uri: d.verification_uri,
            verification_uri_complete: d.verification_uri_complete,
            expires_in: d.expires_in,
            interval: d.interval,
        }
    }
}

/// `None` (an inactive token) is the bare `{"active": false}`.
pub(super) fn introspection(found: Option<Introspection>) -> pb::Introspection {
    let Some(i) = found else {
        return pb::Introspection::default();
    };
    pb::Introspection {
        active: true,
        scope: i.scope,
        client_id: i.client_id,
        username: i.username,
        token_type: i.token_type.into(),
        exp: i.exp,
        iat: i.iat,
        sub: i.sub,
        aud: i.aud,
        iss: i.iss,
        jti: i.jti,
        sid: i.sid,
    }
}

impl From<UserInfo> for pb::UserInfoClaims {
    fn from(i: UserInfo) -> Self {
        Self {
            sub: i.sub,
            name: i.name,
            preferred_username: i.preferred_username,
            updated_at: i.updated_at,
            email: i.email,
            email_verified: i.email_verified,
        }
    }
}

/// The RFC 7591 metadata is the same both ways; the macro writes both
/// conversions from one list of its fields.
macro_rules! same_fields {
    ($a:ty, $b:ty, [$($field:ident),*]) => {
        impl From<$a> for $b {
            fn from(m: $a) -> Self {
                Self { $($field: m.$field),* }
            }
        }
        impl From<$b> for $a {
            fn from(m: $b) -> Self {
                Self { $($field: m.$field),* }
            }
        }
    };
}

same_fields!(
    pb::ClientMetadata,
    ClientMetadata,
    [
        redirect_uris,
        client_name,
        grant_types,
        response_types,
        token_endpoint_auth_method,
        scope,
        post_logout_redirect_uris,
        backchannel_logout_uri
    ]
);

impl From<Registered> for pb::RegisteredClient {
    fn from(r: Registered) -> Self {
        Self {
            client_id: r.client_id,
            client_secret: r.secret,
            client_id_issued_at: r.issued_at,
            metadata: Some(r.metadata.into()),
        }
    }
}
