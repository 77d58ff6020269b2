//! The device authorization grant (RFC 8628), for CLIs and TVs: the device
//! asks for a device code and a user code, its user types the user code on
//! the verification page of a browser elsewhere, signs in and allows it
//! there (the sign-in and consent forms of the authorization flow), and the
//! device polls the token endpoint until it gets tokens, once.

use super::clients::ClientAuth;
use super::{
    Answer, OAuthCore, OAuthFail,
    authorize::{Next, SignInPage, Step, consent_page},
    hash, random_token,
    store::{
        BrowserSession, ClientRecord, CodeGrant, DeviceCodeRecord, DeviceStatus, PendingRequest,
        RequestParams,
    },
    token::{TokenParams, Tokens},
};
use crate::error::Error;
use chrono::{DateTime, Utc};
use suite_proto::time::now;

/// The grant type of the token endpoint's device grant.
pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// The verification page, under the issuer (the gateway serves it).
pub const VERIFICATION_PATH: &str = "/oauth2/device";
/// How long a user has to type the code and allow the device.
const DEVICE_TTL: chrono::Duration = chrono::Duration::minutes(10);
/// The least wait between polls at first, in seconds (RFC 8628 §3.2's default).
const INTERVAL_SECS: i64 = 5;
/// What `slow_down` adds to the interval, for good (RFC 8628 §3.5).
const SLOW_DOWN_SECS: i64 = 5;
/// The interval never grows past this, whatever a broken device does.
const MAX_INTERVAL_SECS: i64 = 60;
/// Consonants without look-alikes (no vowels: no words; no 0/O, 1/I/L
/// confusion is possible in either case), as RFC 8628 §6.1 suggests.
const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// 20^8 ≈ 2^34.6 codes: with ten minutes of life and the gateway's rate
/// limit on the page, guessing a live one is hopeless (RFC 8628 §5.1).
const USER_CODE_CHARS: usize = 8;
/// Attempts at a user code not taken by another live request.
const USER_CODE_TRIES: usize = 5;

/// What the device authorization endpoint answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAuthorization {
    pub device_code: String,
    /// `XXXX-XXXX`.
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: i64,
    pub interval: i64,
}

/// What the verification page shows after a user code was posted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserCodeAnswer {
    /// The sign-in or consent page.
    Next(Box<Next>),
    /// Ask for the code again, saying why.
    Retry(String),
}

/// A new user code: eight letters of the alphabet, each uniform (bytes of
/// 240 and above are drawn again, so that `% 20` has no bias).
fn new_user_code() -> Result<String, Error> {
    let mut code = String::with_capacity(USER_CODE_CHARS);
    let mut raw = [0u8; 32];
    while code.len() < USER_CODE_CHARS {
        getrandom::fill(&mut raw).map_err(|e| Error::Internal(e.to_string()))?;
        for b in raw {
            if code.len() == USER_CODE_CHARS {
                break;
            }
            if b < 240 {
                let letter = USER_CODE_ALPHABET[usize::from(b % 20)];
                code.push(char::from(letter));
            }
        }
    }
    Ok(code)
}

/// A user code as typed, in its stored form (upper case, no dash or
/// spaces), if it can be one of ours.
pub fn normalize_user_code(typed: &str) -> Option<String> {
    if typed.len() > 64 {
        return None;
    }
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\t'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == USER_CODE_CHARS && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)))
        .then_some(code)
}

/// `XXXX-XXXX`, as shown to the user.
fn display(code: &str) -> String {
    let (a, b) = code.split_at(code.len() / 2);
    format!("{a}-{b}")
}

/// The stored hash of a user code (its normal form).
fn user_code_hash(code: &str) -> String {
    hash(&format!("user-code:{code}"))
}

impl OAuthCore {
    /// The device authorization endpoint (RFC 8628 §3.1–3.2).
    pub async fn device_authorize(
        &self,
        auth: &ClientAuth,
        scope: &str,
    ) -> Answer<DeviceAuthorization> {
        let client = match self.authenticate_client(auth).await? {
            Ok(client) => client,
            Err(refused) => return Ok(Err(refused)),
        };
        if !client
            .settings
            .grant_types
            .iter()
            .any(|g| g == DEVICE_GRANT)
        {
            return Ok(Err(OAuthFail::new(
                "unauthorized_client",
                "this client may not use the device authorization grant",
            )));
        }
        let asked = suite_tokens::scope_list(scope);
        if let Some(s) = asked.iter().find(|s| !client.settings.scopes.contains(s)) {
            return Ok(Err(OAuthFail::new(
                "invalid_scope",
                format!("{s:.64} is not allowed for this client"),
            )));
        }
        let mut scopes = Vec::new();
        for s in if asked.is_empty() {
            client.settings.scopes.clone()
        } else {
            asked
        } {
            if !scopes.contains(&s) {
                scopes.push(s);
            }
        }
        let now = now();
        let device_code = random_token()?;
        for _ in 0..USER_CODE_TRIES {
            let user_code = new_user_code()?;
            let record = DeviceCodeRecord {
                device_code_hash: hash(&device_code),
                user_code_hash: user_code_hash(&user_code),
                client_id: client.client_id.clone(),
                scopes: scopes.clone(),
                status: DeviceStatus::Pending,
                interval_secs: INTERVAL_SECS,
                created_at: now,
                expires_at: now + DEVICE_TTL,
                last_polled_at: None,
                user_id: None,
                grant: None,
                session_id: None,
            };
            if self.store.create_device_code(&record).await? {
                let verification_uri = format!("{}{VERIFICATION_PATH}", self.oidc_issuer());
                let shown = display(&user_code);
                tracing::info!(client.id = %client.client_id, "device authorization started");
                return Ok(Ok(DeviceAuthorization {
                    device_code,
                    verification_uri_complete: format!("{verification_uri}?user_code={shown}"),
                    verification_uri,
                    user_code: shown,
                    expires_in: DEVICE_TTL.num_seconds(),
                    interval: INTERVAL_SECS,
                }));
            }
        }
        Err(Error::Internal(
            "no free user code after several tries".into(),
        ))
    }

    /// The verification page was given a user code: the device request's
    /// sign-in page, or its consent page for a signed-in browser. A device
    /// request is always confirmed on the consent page, first-party client
    /// or not, showing the code: whoever sent the user here may be phishing
    /// for someone else's device (RFC 8628 §5.4).
    pub async fn verify_user_code(
        &self,
        typed: &str,
        browser_session: &str,
        binding: &str,
    ) -> Result<UserCodeAnswer, Error> {
        let unknown = || {
            Ok(UserCodeAnswer::Retry(
                "That code is unknown or has expired. Check it, or start again on your device."
                    .into(),
            ))
        };
        let Some(code) = normalize_user_code(typed) else {
            return unknown();
        };
        let now = now();
        let Some(device) = self.store.find_device_code(&user_code_hash(&code)).await? else {
            return unknown();
        };
        if device.status != DeviceStatus::Pending || device.expires_at <= now {
            return unknown();
        }
        let Some(client) = self.store.get_client(&device.client_id).await? else {
            return unknown();
        };
        let params = RequestParams {
            scopes: device.scopes.clone(),
            device_code_hash: device.device_code_hash.clone(),
            user_code: display(&code),
            ..RequestParams::default()
        };
        let session = self.browser_session(browser_session, now).await?;
        let request = self
            .pending_until(&client, params, binding, now, device.expires_at)
            .await?;
        Ok(UserCodeAnswer::Next(Box::new(match session {
            Some(session) => Next {
                step: Step::Consent(consent_page(&request, &client, &session)),
                set_session: None,
                clear_session: false,
            },
            None => Next {
                step: Step::SignIn(SignInPage {
                    request_id: request.id,
                    csrf_token: request.csrf_token,
                    client_name: client.name.clone(),
                    ..SignInPage::default()
                }),
                set_session: None,
                clear_session: !browser_session.is_empty(),
            },
        })))
    }

    /// The consent form of a device request was posted: approves the
    /// device code for the signed-in user, or denies it.
    pub(super) async fn decide_device(
        &self,
        request: &PendingRequest,
        client: &ClientRecord,
        session: &BrowserSession,
        allow: bool,
        now: DateTime<Utc>,
    ) -> Result<Next, Error> {
        let hash = &request.params.device_code_hash;
        let approved = allow.then(|| CodeGrant {
            redirect_uri: String::new(),
            code_challenge: String::new(),
            scopes: request.params.scopes.clone(),
            nonce: String::new(),
            auth_time: session.auth_time.timestamp(),
            browser_session_id: session.id,
            amr: session.amr.clone(),
        });
        let decided = self
            .store
            .decide_device_code(hash, now, approved.as_ref().map(|g| (session.user_id, g)))
            .await?;
        if !decided {
            return Ok(Next {
                step: Step::Error(OAuthFail::new(
                    "expired_token",
                    "this code has expired or was already used: start again on your device",
                )),
                set_session: None,
                clear_session: false,
            });
        }
        tracing::info!(client.id = %client.client_id, user.id = %session.user_id, approved = allow, "device request decided");
        Ok(Next {
            step: Step::Device {
                client_name: client.name.clone(),
                approved: allow,
            },
            set_session: None,
            clear_session: false,
        })
    }

    /// The token endpoint's device grant (RFC 8628 §3.4–3.5): pending
    /// (polled too soon: `slow_down`), denied, expired, or the tokens, once.
    pub(super) async fn device_grant(
        &self,
        client: &ClientRecord,
        p: &TokenParams,
        user_agent: &str,
    ) -> Answer<Tokens> {
        let invalid = || {
            Ok(Err(OAuthFail::new(
                "invalid_grant",
                "the device code is invalid or was used",
            )))
        };
        if p.device_code.len() != 43 {
            return invalid();
        }
        let device_hash = hash(&p.device_code);
        let Some(device) = self.store.get_device_code(&device_hash).await? else {
            return invalid();
        };
        // Another client's code: refused, and left alone.
        if device.client_id != client.client_id {
            return Ok(Err(OAuthFail::new(
                "invalid_grant",
                "the device code was not issued to this client",
            )));
        }
        let now = now();
        match device.status {
            DeviceStatus::Redeemed => return invalid(),
            DeviceStatus::Denied => {
                return Ok(Err(OAuthFail::new(
                    "access_denied",
                    "the user did not allow it",
                )));
            }
            _ if device.expires_at <= now => {
                return Ok(Err(OAuthFail::new(
                    "expired_token",
                    "the device code has expired: start again",
                )));
            }
            DeviceStatus::Pending => {
                // Too soon after the last poll: slow down, and by five
                // seconds more from now on. The wait is only asked while
                // pending: a decision is answered at once.
                let too_soon = device.last_polled_at.is_some_and(|last| {
                    (now - last).num_milliseconds() < device.interval_secs.saturating_mul(1000)
                });
                let interval = if too_soon {
                    (device.interval_secs + SLOW_DOWN_SECS).min(MAX_INTERVAL_SECS)
                } else {
                    device.interval_secs
                };
                self.store
                    .poll_device_code(&device_hash, now, interval)
                    .await?;
                return Ok(Err(if too_soon {
                    OAuthFail::new("slow_down", format!("poll at most every {interval} s"))
                } else {
                    OAuthFail::new("authorization_pending", "the user has not yet allowed it")
                }));
            }
            DeviceStatus::Approved => {}
        }
        let (Some(user_id), Some(grant)) = (device.user_id, device.grant.clone()) else {
            return invalid();
        };
        let opened = match self
            .open_granted_session(client, user_id, &grant, user_agent)
            .await?
        {
            Ok(opened) => opened,
            Err(refused) => return Ok(Err(refused)),
        };
        let session_id = opened.session_id;
        // Redeemed only once its session exists, as a code is spent: a
        // racing poll that loses ends the session it opened.
        if !self
            .store
            .redeem_device_code(&device_hash, session_id)
            .await?
        {
            self.end_losing_session(session_id, user_id).await?;
            return invalid();
        }
        let tokens = self.granted_tokens(client, user_id, &grant, opened).await?;
        tracing::info!(client.id = %client.client_id, user.id = %user_id, session.id = %session_id, "device code exchanged");
        Ok(Ok(tokens))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_eight_letters_of_the_alphabet_typed_any_way() {
        for _ in 0..100 {
            let code = new_user_code().expect("random");
            assert_eq!(code.len(), 8);
            assert!(code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)));
            let shown = display(&code);
            assert_eq!(normalize_user_code(&shown).as_deref(), Some(code.as_str()));
            assert_eq!(
                normalize_user_code(&shown.to_ascii_lowercase()).as_deref(),
                Some(code.as_str())
            );
        }
        assert_eq!(
            normalize_user_code(" bcdf ghjk ").as_deref(),
            Some("BCDFGHJK")
        );
        for bad in ["", "BCDF-GHJ", "BCDF-GHJKL", "ABCD-EFGH", "BCDF-GHJ1", "ß"] {
            assert_eq!(normalize_user_code(bad), None, "{bad}");
        }
    }
}
