//! Persistence of the provider's state: clients, pending authorization
//! requests, codes, consents and browser sessions. One trait; its PostgreSQL
//! and SQLite implementations share their SQL (`sql.rs`).

use crate::store::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use suite_events::Event;
use uuid::Uuid;

/// A registered client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    /// Orders clients by creation (paging); `client_id` is derived from it.
    pub id: Uuid,
    pub client_id: String,
    pub name: String,
    pub confidential: bool,
    pub settings: ClientSettings,
    /// SHA-256 of the secret (base64url); `None` for a public client.
    pub secret_hash: Option<String>,
    /// The secret before the last rotation, until `previous_secret_expires_at`.
    pub previous_secret_hash: Option<String>,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A client's settings, stored as one JSON document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientSettings {
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub scopes: Vec<String>,
    pub first_party: bool,
    pub backchannel_logout_uri: String,
    pub id_token_alg: String,
    /// Seconds; `None`: the service's ACCESS_TOKEN_TTL.
    pub access_token_ttl_secs: Option<u64>,
}

/// An authorization request waiting for a sign-in or a consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRequest {
    pub id: String,
    /// SHA-256 of the browser's binding cookie.
    pub binding_hash: String,
    pub csrf_token: String,
    pub client_id: String,
    pub params: RequestParams,
    pub expires_at: DateTime<Utc>,
}

/// What an authorization request asked for, once checked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestParams {
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub state: String,
    pub nonce: String,
    pub code_challenge: String,
    pub prompt_consent: bool,
    pub login_hint: String,
    /// A device request's (RFC 8628): the device code's hash, and its user
    /// code to show; empty for an authorization request. The sign-in and
    /// consent forms serve both; the consent decides the device code
    /// instead of redirecting.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub device_code_hash: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user_code: String,
    /// `acr_values=mfa`: the sign-in must have had a second factor.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_mfa: bool,
}

/// An authorization code, known by its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRecord {
    pub code_hash: String,
    pub client_id: String,
    pub user_id: Uuid,
    pub grant: CodeGrant,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    /// The session its first exchange opened.
    pub session_id: Option<Uuid>,
}

/// What a code grants, stored as JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeGrant {
    pub redirect_uri: String,
    pub code_challenge: String,
    pub scopes: Vec<String>,
    pub nonce: String,
    /// Seconds since the epoch.
    pub auth_time: i64,
    pub browser_session_id: Uuid,
    pub amr: Vec<String>,
}

/// Where a device request is (RFC 8628).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStatus {
    /// Waiting for its user.
    Pending,
    /// Allowed; its tokens not yet issued.
    Approved,
    Denied,
    /// Its tokens were issued (once).
    Redeemed,
}

impl DeviceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Redeemed => "redeemed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "approved" => Self::Approved,
            "denied" => Self::Denied,
            "redeemed" => Self::Redeemed,
            _ => return None,
        })
    }
}

/// A device authorization request, known by its codes' hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCodeRecord {
    pub device_code_hash: String,
    pub user_code_hash: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub status: DeviceStatus,
    /// The least wait between polls, in seconds (grows with `slow_down`).
    pub interval_secs: i64,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub last_polled_at: Option<DateTime<Utc>>,
    /// Once approved: who, and the sign-in it stands for.
    pub user_id: Option<Uuid>,
    pub grant: Option<CodeGrant>,
    /// The session its redemption opened.
    pub session_id: Option<Uuid>,
}

/// A user's consent to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A browser (SSO) session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserSession {
    pub id: Uuid,
    /// SHA-256 of the cookie's value.
    pub secret_hash: String,
    pub user_id: Uuid,
    pub username: String,
    pub auth_time: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// How the user signed in (RFC 8176 values).
    pub amr: Vec<String>,
}

/// A revoked session of an OAuth client whose client has not been sent its
/// logout token yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutOwed {
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub client_id: String,
    pub browser_session_id: Option<Uuid>,
    /// Attempts so far; also the version a claim must see.
    pub attempts: i32,
}

/// Which refresh sessions to end.
#[derive(Debug, Clone, Copy)]
pub enum SessionsOf<'a> {
    /// Every session of a client.
    Client(&'a str),
    /// A user's sessions of a client.
    UserOfClient(Uuid, &'a str),
    /// The sessions opened from a browser session.
    Browser(Uuid),
}

/// The event for ending session `.0` of user `.1`.
pub type EventFor<'a> = &'a (dyn Fn(Uuid, Uuid) -> Event + Sync);

#[async_trait]
pub trait OAuthStore: Send + Sync {
    /// False (nothing written) if the client id is taken.
    async fn create_client(&self, client: &ClientRecord, events: &[Event]) -> Result<bool>;
    async fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>>;
    async fn list_clients(&self, after: Option<Uuid>, limit: i64) -> Result<Vec<ClientRecord>>;
    /// Writes every mutable column of `client`; false if it is gone.
    async fn update_client(&self, client: &ClientRecord, events: &[Event]) -> Result<bool>;
    /// Deletes the client with its codes, consents and pending requests, and
    /// revokes its sessions (each with `event_for`), in one transaction.
    /// `None` if there was no such client; else the sessions revoked.
    async fn delete_client(
        &self,
        client_id: &str,
        at: DateTime<Utc>,
        events: &[Event],
        event_for: EventFor<'_>,
    ) -> Result<Option<Vec<Uuid>>>;

    async fn create_request(&self, request: &PendingRequest) -> Result<()>;
    async fn get_request(&self, id: &str) -> Result<Option<PendingRequest>>;
    async fn delete_request(&self, id: &str) -> Result<()>;

    async fn create_code(&self, code: &CodeRecord) -> Result<()>;
    async fn get_code(&self, code_hash: &str) -> Result<Option<CodeRecord>>;
    /// Marks the code used by session `session_id`; false if it was used already.
    async fn use_code(&self, code_hash: &str, at: DateTime<Utc>, session_id: Uuid) -> Result<bool>;

    /// False (nothing written) if the user code is taken.
    async fn create_device_code(&self, device: &DeviceCodeRecord) -> Result<bool>;
    async fn get_device_code(&self, device_code_hash: &str) -> Result<Option<DeviceCodeRecord>>;
    async fn find_device_code(&self, user_code_hash: &str) -> Result<Option<DeviceCodeRecord>>;
    /// Records a poll at `at` and the interval from now on.
    async fn poll_device_code(
        &self,
        device_code_hash: &str,
        at: DateTime<Utc>,
        interval_secs: i64,
    ) -> Result<()>;
    /// Approves (with its user and grant) or denies a pending, unexpired
    /// device request; false if it was not one.
    async fn decide_device_code(
        &self,
        device_code_hash: &str,
        at: DateTime<Utc>,
        approved: Option<(Uuid, &CodeGrant)>,
    ) -> Result<bool>;
    /// Marks an approved device request redeemed by session `session_id`;
    /// false if it was not approved (redeemed already, by a racing poll).
    async fn redeem_device_code(&self, device_code_hash: &str, session_id: Uuid) -> Result<bool>;

    async fn get_consent(&self, user_id: Uuid, client_id: &str) -> Result<Option<ConsentRecord>>;
    /// Inserts or replaces the user's consent to the client (scopes, update time).
    async fn put_consent(&self, consent: &ConsentRecord, events: &[Event]) -> Result<()>;
    async fn list_consents(
        &self,
        user_id: Uuid,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<ConsentRecord>>;
    /// Deletes the consent and revokes the user's sessions of the client;
    /// `None` if there was no consent.
    async fn delete_consent(
        &self,
        user_id: Uuid,
        client_id: &str,
        at: DateTime<Utc>,
        events: &[Event],
        event_for: EventFor<'_>,
    ) -> Result<Option<Vec<Uuid>>>;

    async fn create_browser_session(&self, session: &BrowserSession) -> Result<()>;
    async fn find_browser_session(&self, secret_hash: &str) -> Result<Option<BrowserSession>>;
    async fn get_browser_session(&self, id: Uuid) -> Result<Option<BrowserSession>>;
    async fn touch_browser_session(&self, id: Uuid, at: DateTime<Utc>) -> Result<()>;
    /// Revokes the browser session and the refresh sessions opened from it
    /// (each with `event_for`); the ids of those revoked.
    async fn end_browser_session(
        &self,
        id: Uuid,
        at: DateTime<Utc>,
        event_for: EventFor<'_>,
    ) -> Result<Vec<Uuid>>;

    /// Revokes the user's browser sessions signed in before `before`, and
    /// (`forget_consents`) deletes their consents; how many rows changed.
    async fn forget_user(
        &self,
        user_id: Uuid,
        before: DateTime<Utc>,
        at: DateTime<Utc>,
        forget_consents: bool,
    ) -> Result<u64>;

    /// Revokes the live sessions `which` names, each with its event.
    async fn revoke_sessions(
        &self,
        which: SessionsOf<'_>,
        at: DateTime<Utc>,
        event_for: EventFor<'_>,
    ) -> Result<Vec<Uuid>>;

    /// Up to `limit` logout tokens owed and due by `now`, oldest first.
    async fn logouts_due(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<LogoutOwed>>;

    /// Takes `owed` for one attempt: no other replica sees it due before
    /// `lease_until`. False if another took it first (its attempts moved).
    async fn claim_logout(&self, owed: &LogoutOwed, lease_until: DateTime<Utc>) -> Result<bool>;

    /// The attempt's end: `retry_at` `None` settles the debt (delivered, or
    /// given up), `Some` makes it due again then.
    async fn settle_logout(&self, session_id: Uuid, retry_at: Option<DateTime<Utc>>) -> Result<()>;

    /// Deletes expired requests, codes and device codes, and dead browser
    /// sessions.
    async fn prune(&self, now: DateTime<Utc>, idle_before: DateTime<Utc>) -> Result<u64>;
}
