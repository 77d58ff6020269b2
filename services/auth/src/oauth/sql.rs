//! The provider's store on PostgreSQL and on SQLite: one body of SQL for
//! both (`$n` parameters, which SQLite takes too), expanded once per
//! database so that each gets its own pool, transaction and outbox types.

use super::store::{
    BrowserSession, ClientRecord, CodeGrant, CodeRecord, ConsentRecord, DeviceCodeRecord,
    DeviceStatus, EventFor, LogoutOwed, OAuthStore, PendingRequest, SessionsOf,
};
use crate::store::{Result, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use suite_events::{Event, outbox};
use uuid::Uuid;

/// A JSON column's value, or a store error naming it.
fn from_json<T: serde::de::DeserializeOwned>(column: &str, text: &str) -> sqlx::Result<T> {
    serde_json::from_str(text).map_err(|e| sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: Box::new(e),
    })
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Other(e.to_string()))
}

/// The scopes of a consent row (space-separated).
fn scopes_of(text: &str) -> Vec<String> {
    suite_tokens::scope_list(text)
}

// The tables' columns, the row mappings and the sessions' revocation:
// macros beside this one.
#[macro_use]
mod rows;

macro_rules! oauth_store {
    ($store:ident, $pool:ty, $db:ty, $row:ty, $append:path, $begin:literal) => {
        pub struct $store {
            pub(crate) pool: $pool,
        }

        oauth_rows!($db, $row);

        #[async_trait]
        impl OAuthStore for $store {
            async fn create_client(&self, c: &ClientRecord, events: &[Event]) -> Result<bool> {
                let settings = to_json(&c.settings)?;
                let mut tx = self.pool.begin_with($begin).await?;
                let done = sqlx::query(
                    "INSERT INTO oauth_clients (id, client_id, name, confidential, settings, secret_hash, \
                     previous_secret_hash, previous_secret_expires_at, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (client_id) DO NOTHING",
                )
                .bind(c.id)
                .bind(&c.client_id)
                .bind(&c.name)
                .bind(c.confidential)
                .bind(settings)
                .bind(&c.secret_hash)
                .bind(&c.previous_secret_hash)
                .bind(c.previous_secret_expires_at)
                .bind(c.created_at)
                .bind(c.updated_at)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() != 1 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                $append(&mut tx, events).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>> {
                let row = sqlx::query(concat!(
                    "SELECT ", client_columns!(), " FROM oauth_clients WHERE client_id = $1"
                ))
                .bind(client_id)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.as_ref().map(client).transpose()?)
            }

            async fn list_clients(
                &self,
                after: Option<Uuid>,
                limit: i64,
            ) -> Result<Vec<ClientRecord>> {
                let rows = sqlx::query(concat!(
                    "SELECT ", client_columns!(), " FROM oauth_clients \
                     WHERE ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2"
                ))
                .bind(after)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.iter().map(client).collect::<sqlx::Result<_>>()?)
            }

            async fn update_client(&self, c: &ClientRecord, events: &[Event]) -> Result<bool> {
                let settings = to_json(&c.settings)?;
                let mut tx = self.pool.begin_with($begin).await?;
                let done = sqlx::query(
                    "UPDATE oauth_clients SET name = $2, settings = $3, secret_hash = $4, \
                     previous_secret_hash = $5, previous_secret_expires_at = $6, updated_at = $7 \
                     WHERE client_id = $1",
                )
                .bind(&c.client_id)
                .bind(&c.name)
                .bind(settings)
                .bind(&c.secret_hash)
                .bind(&c.previous_secret_hash)
                .bind(c.previous_secret_expires_at)
                .bind(c.updated_at)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() != 1 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                $append(&mut tx, events).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn delete_client(
                &self,
                client_id: &str,
                at: DateTime<Utc>,
                events: &[Event],
                event_for: EventFor<'_>,
            ) -> Result<Option<Vec<Uuid>>> {
                let mut tx = self.pool.begin_with($begin).await?;
                let done = sqlx::query("DELETE FROM oauth_clients WHERE client_id = $1")
                    .bind(client_id)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() != 1 {
                    tx.rollback().await?;
                    return Ok(None);
                }
                for sql in [
                    "DELETE FROM oauth_codes WHERE client_id = $1",
                    "DELETE FROM oauth_device_codes WHERE client_id = $1",
                    "DELETE FROM oauth_consents WHERE client_id = $1",
                    "DELETE FROM oauth_requests WHERE client_id = $1",
                ] {
                    sqlx::query(sql)
                        .bind(client_id)
                        .execute(&mut *tx)
                        .await?;
                }
                let (ids, mut ended) =
                    revoke_in(&mut tx, SessionsOf::Client(client_id), at, event_for).await?;
                ended.extend(events.iter().cloned());
                $append(&mut tx, &ended).await?;
                tx.commit().await?;
                Ok(Some(ids))
            }

            async fn create_request(&self, r: &PendingRequest) -> Result<()> {
                let params = to_json(&r.params)?;
                sqlx::query(
                    "INSERT INTO oauth_requests (id, binding_hash, csrf_token, client_id, params, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&r.id)
                .bind(&r.binding_hash)
                .bind(&r.csrf_token)
                .bind(&r.client_id)
                .bind(params)
                .bind(r.expires_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn get_request(&self, id: &str) -> Result<Option<PendingRequest>> {
                let row = sqlx::query(
                    "SELECT id, binding_hash, csrf_token, client_id, params, expires_at \
                     FROM oauth_requests WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                let Some(row) = row else { return Ok(None) };
                Ok(Some(PendingRequest {
                    id: row.try_get("id")?,
                    binding_hash: row.try_get("binding_hash")?,
                    csrf_token: row.try_get("csrf_token")?,
                    client_id: row.try_get("client_id")?,
                    params: from_json("params", &row.try_get::<String, _>("params")?)?,
                    expires_at: row.try_get("expires_at")?,
                }))
            }

            async fn delete_request(&self, id: &str) -> Result<()> {
                sqlx::query("DELETE FROM oauth_requests WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn create_code(&self, c: &CodeRecord) -> Result<()> {
                let grant = to_json(&c.grant)?;
                sqlx::query(
                    "INSERT INTO oauth_codes (code_hash, client_id, user_id, grant_data, expires_at, used_at, session_id) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&c.code_hash)
                .bind(&c.client_id)
                .bind(c.user_id)
                .bind(grant)
                .bind(c.expires_at)
                .bind(c.used_at)
                .bind(c.session_id)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn get_code(&self, code_hash: &str) -> Result<Option<CodeRecord>> {
                let row = sqlx::query(
                    "SELECT code_hash, client_id, user_id, grant_data, expires_at, used_at, session_id \
                     FROM oauth_codes WHERE code_hash = $1",
                )
                .bind(code_hash)
                .fetch_optional(&self.pool)
                .await?;
                let Some(row) = row else { return Ok(None) };
                Ok(Some(CodeRecord {
                    code_hash: row.try_get("code_hash")?,
                    client_id: row.try_get("client_id")?,
                    user_id: row.try_get("user_id")?,
                    grant: from_json("grant_data", &row.try_get::<String, _>("grant_data")?)?,
                    expires_at: row.try_get("expires_at")?,
                    used_at: row.try_get("used_at")?,
                    session_id: row.try_get("session_id")?,
                }))
            }

            async fn use_code(
                &self,
                code_hash: &str,
                at: DateTime<Utc>,
                session_id: Uuid,
            ) -> Result<bool> {
                let done = sqlx::query(
                    "UPDATE oauth_codes SET used_at = $2, session_id = $3 \
                     WHERE code_hash = $1 AND used_at IS NULL",
                )
                .bind(code_hash)
                .bind(at)
                .bind(session_id)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn create_device_code(&self, d: &DeviceCodeRecord) -> Result<bool> {
                let grant = d.grant.as_ref().map(to_json).transpose()?;
                let done = sqlx::query(concat!(
                    "INSERT INTO oauth_device_codes (", device_columns!(), ") \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                     ON CONFLICT DO NOTHING"
                ))
                .bind(&d.device_code_hash)
                .bind(&d.user_code_hash)
                .bind(&d.client_id)
                .bind(d.scopes.join(" "))
                .bind(d.status.as_str())
                .bind(d.interval_secs)
                .bind(d.created_at)
                .bind(d.expires_at)
                .bind(d.last_polled_at)
                .bind(d.user_id)
                .bind(grant)
                .bind(d.session_id)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn get_device_code(
                &self,
                device_code_hash: &str,
            ) -> Result<Option<DeviceCodeRecord>> {
                let row = sqlx::query(concat!(
                    "SELECT ", device_columns!(), " FROM oauth_device_codes WHERE device_code_hash = $1"
                ))
                .bind(device_code_hash)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.as_ref().map(device).transpose()?)
            }

            async fn find_device_code(
                &self,
                user_code_hash: &str,
            ) -> Result<Option<DeviceCodeRecord>> {
                let row = sqlx::query(concat!(
                    "SELECT ", device_columns!(), " FROM oauth_device_codes WHERE user_code_hash = $1"
                ))
                .bind(user_code_hash)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.as_ref().map(device).transpose()?)
            }

            async fn poll_device_code(
                &self,
                device_code_hash: &str,
                at: DateTime<Utc>,
                interval_secs: i64,
            ) -> Result<()> {
                sqlx::query(
                    "UPDATE oauth_device_codes SET last_polled_at = $2, interval_secs = $3 \
                     WHERE device_code_hash = $1",
                )
                .bind(device_code_hash)
                .bind(at)
                .bind(interval_secs)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn decide_device_code(
                &self,
                device_code_hash: &str,
                at: DateTime<Utc>,
                approved: Option<(Uuid, &CodeGrant)>,
            ) -> Result<bool> {
                let (status, user_id, grant) = match approved {
                    Some((user_id, grant)) => {
                        (DeviceStatus::Approved, Some(user_id), Some(to_json(grant)?))
                    }
                    None => (DeviceStatus::Denied, None, None),
                };
                let done = sqlx::query(
                    "UPDATE oauth_device_codes SET status = $2, user_id = $3, grant_data = $4 \
                     WHERE device_code_hash = $1 AND status = 'pending' AND expires_at > $5",
                )
                .bind(device_code_hash)
                .bind(status.as_str())
                .bind(user_id)
                .bind(grant)
                .bind(at)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn redeem_device_code(
                &self,
                device_code_hash: &str,
                session_id: Uuid,
            ) -> Result<bool> {
                let done = sqlx::query(
                    "UPDATE oauth_device_codes SET status = 'redeemed', session_id = $2 \
                     WHERE device_code_hash = $1 AND status = 'approved'",
                )
                .bind(device_code_hash)
                .bind(session_id)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn get_consent(
                &self,
                user_id: Uuid,
                client_id: &str,
            ) -> Result<Option<ConsentRecord>> {
                let row = sqlx::query(concat!(
                    "SELECT ", consent_columns!(), " FROM oauth_consents \
                     WHERE user_id = $1 AND client_id = $2"
                ))
                .bind(user_id)
                .bind(client_id)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.as_ref().map(consent).transpose()?)
            }

            async fn put_consent(&self, c: &ConsentRecord, events: &[Event]) -> Result<()> {
                let mut tx = self.pool.begin_with($begin).await?;
                sqlx::query(concat!(
                    "INSERT INTO oauth_consents (", consent_columns!(), ") \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (user_id, client_id) \
                     DO UPDATE SET scopes = excluded.scopes, updated_at = excluded.updated_at"
                ))
                .bind(c.id)
                .bind(c.user_id)
                .bind(&c.client_id)
                .bind(c.scopes.join(" "))
                .bind(c.created_at)
                .bind(c.updated_at)
                .execute(&mut *tx)
                .await?;
                $append(&mut tx, events).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn list_consents(
                &self,
                user_id: Uuid,
                after: Option<Uuid>,
                limit: i64,
            ) -> Result<Vec<ConsentRecord>> {
                let rows = sqlx::query(concat!(
                    "SELECT ", consent_columns!(), " FROM oauth_consents \
                     WHERE user_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
                ))
                .bind(user_id)
                .bind(after)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.iter().map(consent).collect::<sqlx::Result<_>>()?)
            }

            async fn delete_consent(
                &self,
                user_id: Uuid,
                client_id: &str,
                at: DateTime<Utc>,
                events: &[Event],
                event_for: EventFor<'_>,
            ) -> Result<Option<Vec<Uuid>>> {
                let mut tx = self.pool.begin_with($begin).await?;
                let done =
                    sqlx::query("DELETE FROM oauth_consents WHERE user_id = $1 AND client_id = $2")
                        .bind(user_id)
                        .bind(client_id)
                        .execute(&mut *tx)
                        .await?;
                if done.rows_affected() != 1 {
                    tx.rollback().await?;
                    return Ok(None);
                }
                let (ids, mut ended) = revoke_in(
                    &mut tx,
                    SessionsOf::UserOfClient(user_id, client_id),
                    at,
                    event_for,
                )
                .await?;
                ended.extend(events.iter().cloned());
                $append(&mut tx, &ended).await?;
                tx.commit().await?;
                Ok(Some(ids))
            }

            async fn create_browser_session(&self, s: &BrowserSession) -> Result<()> {
                sqlx::query(concat!(
                    "INSERT INTO browser_sessions (", browser_columns!(), ") \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                ))
                .bind(s.id)
                .bind(&s.secret_hash)
                .bind(s.user_id)
                .bind(&s.username)
                .bind(s.auth_time)
                .bind(s.last_used_at)
                .bind(s.expires_at)
                .bind(s.revoked_at)
                .bind(s.amr.join(" "))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn find_browser_session(
                &self,
                secret_hash: &str,
            ) -> Result<Option<BrowserSession>> {
                let row = sqlx::query(concat!(
                    "SELECT ", browser_columns!(), " FROM browser_sessions WHERE secret_hash = $1"
                ))
                .bind(secret_hash)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.as_ref().map(browser).transpose()?)
            }

            async fn get_browser_session(&self, id: Uuid) -> Result<Option<BrowserSession>> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    browser_columns!(),
                    " FROM browser_sessions WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.as_ref().map(browser).transpose()?)
            }

            async fn touch_browser_session(&self, id: Uuid, at: DateTime<Utc>) -> Result<()> {
                sqlx::query("UPDATE browser_sessions SET last_used_at = $2 WHERE id = $1")
                    .bind(id)
                    .bind(at)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn end_browser_session(
                &self,
                id: Uuid,
                at: DateTime<Utc>,
                event_for: EventFor<'_>,
            ) -> Result<Vec<Uuid>> {
                let mut tx = self.pool.begin_with($begin).await?;
                sqlx::query(
                    "UPDATE browser_sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                )
                .bind(id)
                .bind(at)
                .execute(&mut *tx)
                .await?;
                let (ids, events) =
                    revoke_in(&mut tx, SessionsOf::Browser(id), at, event_for).await?;
                $append(&mut tx, &events).await?;
                tx.commit().await?;
                Ok(ids)
            }

            async fn forget_user(
                &self,
                user_id: Uuid,
                before: DateTime<Utc>,
                at: DateTime<Utc>,
                forget_consents: bool,
            ) -> Result<u64> {
                let mut tx = self.pool.begin_with($begin).await?;
                let mut n = sqlx::query(
                    "UPDATE browser_sessions SET revoked_at = $3 \
                     WHERE user_id = $1 AND auth_time < $2 AND revoked_at IS NULL",
                )
                .bind(user_id)
                .bind(before)
                .bind(at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if forget_consents {
                    n += sqlx::query("DELETE FROM oauth_consents WHERE user_id = $1")
                        .bind(user_id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                tx.commit().await?;
                Ok(n)
            }

            async fn revoke_sessions(
                &self,
                which: SessionsOf<'_>,
                at: DateTime<Utc>,
                event_for: EventFor<'_>,
            ) -> Result<Vec<Uuid>> {
                let mut tx = self.pool.begin_with($begin).await?;
                let (ids, events) = revoke_in(&mut tx, which, at, event_for).await?;
                $append(&mut tx, &events).await?;
                tx.commit().await?;
                Ok(ids)
            }

            async fn logouts_due(
                &self,
                now: DateTime<Utc>,
                limit: i64,
            ) -> Result<Vec<LogoutOwed>> {
                let rows = sqlx::query(
                    "SELECT id, user_id, client_id, browser_session_id, logout_attempts \
                     FROM sessions WHERE client_id IS NOT NULL AND NOT logout_sent \
                     AND revoked_at IS NOT NULL \
                     AND (logout_retry_at IS NULL OR logout_retry_at <= $1) \
                     ORDER BY revoked_at LIMIT $2",
                )
                .bind(now)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                let owed = |row: &$row| -> sqlx::Result<LogoutOwed> {
                    Ok(LogoutOwed {
                        session_id: row.try_get("id")?,
                        user_id: row.try_get("user_id")?,
                        client_id: row.try_get("client_id")?,
                        browser_session_id: row.try_get("browser_session_id")?,
                        attempts: row.try_get("logout_attempts")?,
                    })
                };
                Ok(rows.iter().map(owed).collect::<sqlx::Result<_>>()?)
            }

            async fn claim_logout(
                &self,
                owed: &LogoutOwed,
                lease_until: DateTime<Utc>,
            ) -> Result<bool> {
                let claimed = sqlx::query(
                    "UPDATE sessions SET logout_attempts = logout_attempts + 1, \
                     logout_retry_at = $3 \
                     WHERE id = $1 AND logout_attempts = $2 AND NOT logout_sent",
                )
                .bind(owed.session_id)
                .bind(owed.attempts)
                .bind(lease_until)
                .execute(&self.pool)
                .await?
                .rows_affected();
                Ok(claimed == 1)
            }

            async fn settle_logout(
                &self,
                session_id: Uuid,
                retry_at: Option<DateTime<Utc>>,
            ) -> Result<()> {
                match retry_at {
                    None => sqlx::query(
                        "UPDATE sessions SET logout_sent = TRUE, logout_retry_at = NULL \
                         WHERE id = $1",
                    )
                    .bind(session_id),
                    Some(at) => sqlx::query(
                        "UPDATE sessions SET logout_retry_at = $2 WHERE id = $1",
                    )
                    .bind(session_id)
                    .bind(at),
                }
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn prune(&self, now: DateTime<Utc>, idle_before: DateTime<Utc>) -> Result<u64> {
                let mut tx = self.pool.begin_with($begin).await?;
                let mut n = 0;
                for sql in [
                    "DELETE FROM oauth_requests WHERE expires_at < $1",
                    "DELETE FROM oauth_codes WHERE expires_at < $1",
                    "DELETE FROM oauth_device_codes WHERE expires_at < $1",
                ] {
                    n += sqlx::query(sql).bind(now).execute(&mut *tx).await?.rows_affected();
                }
                n += sqlx::query(
                    "DELETE FROM browser_sessions WHERE revoked_at < $1 OR expires_at < $1 \
                     OR last_used_at < $2",
                )
                .bind(now)
                .bind(idle_before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                Ok(n)
            }
        }
    };
}

pub mod postgres {
    use super::*;
    oauth_store!(
        PgOAuthStore,
        sqlx::PgPool,
        sqlx::Postgres,
        sqlx::postgres::PgRow,
        outbox::append_pg,
        "BEGIN"
    );
}

pub mod sqlite {
    use super::*;
    // The write lock from the start, as the session store takes it: a
    // read-then-write transaction never meets SQLITE_BUSY on upgrading.
    oauth_store!(
        SqliteOAuthStore,
        sqlx::SqlitePool,
        sqlx::Sqlite,
        sqlx::sqlite::SqliteRow,
        outbox::append_sqlite,
        "BEGIN IMMEDIATE"
    );
}
