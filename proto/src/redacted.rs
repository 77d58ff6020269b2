//! `Debug` for the messages that carry a secret (`build.rs` lists them in
//! `SECRET_BEARING` and skips prost's derive): every field is shown but the
//! secret ones, which print as `<redacted>` when set (an empty one as `""`,
//! so a log still tells a missing password from a given one).

use crate::{auth, user};
use std::fmt;

/// A secret field's stand-in.
struct Redacted<'a>(&'a str);

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("\"\"")
        } else {
            f.write_str("<redacted>")
        }
    }
}

/// `impl Debug for $message`, showing `shown` fields and hiding `secret` ones.
macro_rules! redacted_debug {
    ($($message:ty { shown: [$($shown:ident),*], secret: [$($secret:ident),*] })*) => {$(
        impl fmt::Debug for $message {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($message))
                    $(.field(stringify!($shown), &self.$shown))*
                    $(.field(stringify!($secret), &Redacted(&self.$secret)))*
                    .finish()
            }
        }
    )*};
}

redacted_debug! {
    auth::LoginRequest { shown: [login, user_agent], secret: [password] }
    auth::LoginResponse {
        shown: [token_type, expires_in, session_id],
        secret: [access_token, refresh_token]
    }
    auth::RefreshRequest { shown: [], secret: [refresh_token] }
    auth::RefreshResponse {
        shown: [token_type, expires_in, session_id],
        secret: [access_token, refresh_token]
    }
    auth::LogoutRequest { shown: [], secret: [refresh_token] }
    auth::CreateClientResponse { shown: [client], secret: [client_secret] }
    auth::RotateClientSecretResponse { shown: [client], secret: [client_secret] }
    auth::CreatePersonalAccessTokenResponse { shown: [token], secret: [secret] }
    auth::ExchangePersonalAccessTokenRequest { shown: [], secret: [token] }
    auth::ExchangePersonalAccessTokenResponse { shown: [expires_in], secret: [access_token] }
    auth::AuthorizeRequest { shown: [parameters], secret: [browser_session, browser_binding] }
    auth::BrowserSessionCookie { shown: [max_age_secs], secret: [value] }
    auth::SignInRequest {
        shown: [request_id, login, user_agent],
        secret: [csrf_token, browser_binding, password]
    }
    auth::ConsentRequest {
        shown: [request_id, allow],
        secret: [csrf_token, browser_binding, browser_session]
    }
    auth::ClientAuthentication { shown: [client_id, method], secret: [client_secret] }
    auth::TokenRequest {
        shown: [client, grant_type, redirect_uri, scope],
        secret: [code, code_verifier, refresh_token]
    }
    auth::Tokens {
        shown: [token_type, expires_in, scope],
        secret: [access_token, refresh_token, id_token]
    }
    auth::IntrospectRequest { shown: [client, token_type_hint], secret: [token] }
    auth::RevokeRequest { shown: [client, token_type_hint], secret: [token] }
    auth::UserInfoRequest { shown: [], secret: [access_token] }
    auth::EndSessionRequest {
        shown: [client_id, post_logout_redirect_uri, state, confirmed],
        secret: [id_token_hint, browser_session, browser_binding, csrf_token]
    }
    user::CreateUserRequest {
        shown: [username, email, display_name, roles],
        secret: [password]
    }
    user::ChangePasswordRequest { shown: [id], secret: [current_password, new_password] }
    user::VerifyCredentialsRequest { shown: [login, client_address, user_agent], secret: [password] }
    user::ConfirmEmailRequest { shown: [], secret: [token] }
    user::RevertEmailChangeRequest { shown: [], secret: [token] }
    user::ResetPasswordRequest { shown: [], secret: [token, new_password] }
    user::ImportedUser {
        shown: [username, email, display_name, create_time],
        secret: [password_hash]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_reach_a_debug_print() {
        let printed = [
            format!(
                "{:?}",
                auth::LoginRequest {
                    login: "alice".into(),
                    password: "hunter2-secret".into(),
                    user_agent: "curl".into(),
                }
            ),
            format!(
                "{:?}",
                auth::LoginResponse {
                    access_token: "eyJ-secret".into(),
                    refresh_token: "rt-secret".into(),
                    ..Default::default()
                }
            ),
            format!(
                "{:?}",
                auth::RefreshRequest {
                    refresh_token: "rt-secret".into()
                }
            ),
            format!(
                "{:?}",
                user::ChangePasswordRequest {
                    id: "me".into(),
                    current_password: "old-secret".into(),
                    new_password: "new-secret".into(),
                }
            ),
            format!(
                "{:?}",
                user::VerifyCredentialsRequest {
                    login: "alice".into(),
                    password: "hunter2-secret".into(),
                    client_address: "192.0.2.1".into(),
                    user_agent: "curl".into(),
                }
            ),
            format!(
                "{:?}",
                user::ResetPasswordRequest {
                    token: "token-secret".into(),
                    new_password: "new-secret".into(),
                }
            ),
            format!(
                "{:?}",
                user::ConfirmEmailRequest {
                    token: "token-secret".into(),
                }
            ),
            format!(
                "{:?}",
                user::ImportedUser {
                    password_hash: "$2b$12$secret".into(),
                    ..Default::default()
                }
            ),
        ];
        for p in &printed {
            assert!(!p.contains("secret"), "{p}");
            assert!(p.contains("<redacted>"), "{p}");
        }
        assert!(printed[0].contains("alice"), "other fields still show");
    }
}
