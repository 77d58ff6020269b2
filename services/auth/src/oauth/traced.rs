//! Every provider store call in a database span (see `suite_db::span`),
//! with the database's breaker and the retry of collisions.

use super::store::{
    BrowserSession, ClientRecord, CodeGrant, CodeRecord, ConsentRecord, DeviceCodeRecord, EventFor,
    LogoutOwed, OAuthStore, PendingRequest, SessionsOf,
};
use crate::store::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use suite_db::Traced;
use suite_events::Event;
use uuid::Uuid;

#[async_trait]
impl OAuthStore for Traced<dyn OAuthStore> {
    async fn create_client(&self, client: &ClientRecord, events: &[Event]) -> Result<bool> {
        self.run("INSERT", "oauth_clients", || {
            self.inner().create_client(client, events)
        })
        .await
    }
    async fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>> {
        self.run("SELECT", "oauth_clients", || {
            self.inner().get_client(client_id)
        })
        .await
    }
    async fn list_clients(&self, after: Option<Uuid>, limit: i64) -> Result<Vec<ClientRecord>> {
        self.run("SELECT", "oauth_clients", || {
            self.inner().list_clients(after, limit)
        })
        .await
    }
    async fn update_client(&self, client: &ClientRecord, events: &[Event]) -> Result<bool> {
        self.run("UPDATE", "oauth_clients", || {
            self.inner().update_client(client, events)
        })
        .await
    }
    async fn delete_client(
        &self,
        client_id: &str,
        at: DateTime<Utc>,
        events: &[Event],
        event_for: EventFor<'_>,
    ) -> Result<Option<Vec<Uuid>>> {
        self.run("DELETE", "oauth_clients", || {
            self.inner().delete_client(client_id, at, events, event_for)
        })
        .await
    }
    async fn create_request(&self, request: &PendingRequest) -> Result<()> {
        self.run("INSERT", "oauth_requests", || {
            self.inner().create_request(request)
        })
        .await
    }
    async fn get_request(&self, id: &str) -> Result<Option<PendingRequest>> {
        self.run("SELECT", "oauth_requests", || self.inner().get_request(id))
            .await
    }
    async fn delete_request(&self, id: &str) -> Result<()> {
        self.run("DELETE", "oauth_requests", || {
            self.inner().delete_request(id)
        })
        .await
    }
    async fn create_code(&self, code: &CodeRecord) -> Result<()> {
        self.run("INSERT", "oauth_codes", || self.inner().create_code(code))
            .await
    }
    async fn get_code(&self, code_hash: &str) -> Result<Option<CodeRecord>> {
        self.run("SELECT", "oauth_codes", || self.inner().get_code(code_hash))
            .await
    }
    async fn create_device_code(&self, device: &DeviceCodeRecord) -> Result<bool> {
        self.run("INSERT", "oauth_device_codes", || {
            self.inner().create_device_code(device)
        })
        .await
    }
    async fn get_device_code(&self, device_code_hash: &str) -> Result<Option<DeviceCodeRecord>> {
        self.run("SELECT", "oauth_device_codes", || {
            self.inner().get_device_code(device_code_hash)
        })
        .await
    }
    async fn find_device_code(&self, user_code_hash: &str) -> Result<Option<DeviceCodeRecord>> {
        self.run("SELECT", "oauth_device_codes", || {
            self.inner().find_device_code(user_code_hash)
        })
        .await
    }
    async fn poll_device_code(
        &self,
        device_code_hash: &str,
        at: DateTime<Utc>,
        interval_secs: i64,
    ) -> Result<()> {
        self.run("UPDATE", "oauth_device_codes", || {
            self.inner()
                .poll_device_code(device_code_hash, at, interval_secs)
        })
        .await
    }
    async fn decide_device_code(
        &self,
        device_code_hash: &str,
        at: DateTime<Utc>,
        approved: Option<(Uuid, &CodeGrant)>,
    ) -> Result<bool> {
        self.run("UPDATE", "oauth_device_codes", || {
            self.inner()
                .decide_device_code(device_code_hash, at, approved)
        })
        .await
    }
    async fn redeem_device_code(&self, device_code_hash: &str, session_id: Uuid) -> Result<bool> {
        self.run("UPDATE", "oauth_device_codes", || {
            self.inner()
                .redeem_device_code(device_code_hash, session_id)
        })
        .await
    }
    async fn use_code(&self, code_hash: &str, at: DateTime<Utc>, session_id: Uuid) -> Result<bool> {
        self.run("UPDATE", "oauth_codes", || {
            self.inner().use_code(code_hash, at, session_id)
        })
        .await
    }
    async fn get_consent(&self, user_id: Uuid, client_id: &str) -> Result<Option<ConsentRecord>> {
        self.run("SELECT", "oauth_consents", || {
            self.inner().get_consent(user_id, client_id)
        })
        .await
    }
    async fn put_consent(&self, consent: &ConsentRecord, events: &[Event]) -> Result<()> {
        self.run("INSERT", "oauth_consents", || {
            self.inner().put_consent(consent, events)
        })
        .await
    }
    async fn list_consents(
        &self,
        user_id: Uuid,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<ConsentRecord>> {
        self.run("SELECT", "oauth_consents", || {
            self.inner().list_consents(user_id, after, limit)
        })
        .await
    }
    async fn delete_consent(
        &self,
        user_id: Uuid,
        client_id: &str,
        at: DateTime<Utc>,
        events: &[Event],
        event_for: EventFor<'_>,
    ) -> Result<Option<Vec<Uuid>>> {
        self.run("DELETE", "oauth_consents", || {
            self.inner()
                .delete_consent(user_id, client_id, at, events, event_for)
        })
        .await
    }
    async fn create_browser_session(&self, session: &BrowserSession) -> Result<()> {
        self.run("INSERT", "browser_sessions", || {
            self.inner().create_browser_session(session)
        })
        .await
    }
    async fn find_browser_session(&self, secret_hash: &str) -> Result<Option<BrowserSession>> {
        self.run("SELECT", "browser_sessions", || {
            self.inner().find_browser_session(secret_hash)
        })
        .await
    }
    async fn get_browser_session(&self, id: Uuid) -> Result<Option<BrowserSession>> {
        self.run("SELECT", "browser_sessions", || {
            self.inner().get_browser_session(id)
        })
        .await
    }
    async fn touch_browser_session(&self, id: Uuid, at: DateTime<Utc>) -> Result<()> {
        self.run("UPDATE", "browser_sessions", || {
            self.inner().touch_browser_session(id, at)
        })
        .await
    }
    async fn end_browser_session(
        &self,
        id: Uuid,
        at: DateTime<Utc>,
        event_for: EventFor<'_>,
    ) -> Result<Vec<Uuid>> {
        self.run("UPDATE", "browser_sessions", || {
            self.inner().end_browser_session(id, at, event_for)
        })
        .await
    }
    async fn forget_user(
        &self,
        user_id: Uuid,
        before: DateTime<Utc>,
        at: DateTime<Utc>,
        forget_consents: bool,
    ) -> Result<u64> {
        self.run("UPDATE", "browser_sessions", || {
            self.inner()
                .forget_user(user_id, before, at, forget_consents)
        })
        .await
    }
    async fn revoke_sessions(
        &self,
        which: SessionsOf<'_>,
        at: DateTime<Utc>,
        event_for: EventFor<'_>,
    ) -> Result<Vec<Uuid>> {
        self.run("UPDATE", "sessions", || {
            self.inner().revoke_sessions(which, at, event_for)
        })
        .await
    }
    async fn logouts_due(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<LogoutOwed>> {
        // Every replica asks every second: a span each time would bury the
        // traces that matter, and a failed poll is simply asked again.
        self.inner().logouts_due(now, limit).await
    }
    async fn claim_logout(&self, owed: &LogoutOwed, lease_until: DateTime<Utc>) -> Result<bool> {
        self.run("UPDATE", "sessions", || {
            self.inner().claim_logout(owed, lease_until)
        })
        .await
    }
    async fn settle_logout(&self, session_id: Uuid, retry_at: Option<DateTime<Utc>>) -> Result<()> {
        self.run("UPDATE", "sessions", || {
            self.inner().settle_logout(session_id, retry_at)
        })
        .await
    }
    async fn prune(&self, now: DateTime<Utc>, idle_before: DateTime<Utc>) -> Result<u64> {
        self.run("DELETE", "oauth_requests", || {
            self.inner().prune(now, idle_before)
        })
        .await
    }
}
