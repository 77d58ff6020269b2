//! What the two backends of the auth store share: the same statements (`$n`
//! placeholders work on both databases), the same row mappings, and every
//! method but the few where PostgreSQL takes a shorter road
//! ([`auth_store!`]'s caller writes those).

/// A SELECT of every column of `sessions`, followed by `$rest`.
macro_rules! select_sessions {
    ($rest:literal) => {
        concat!(
            "SELECT id, user_id, created_at, last_used_at, expires_at, user_agent, ip_address, revoked_at, successor_key, client_id, scope, browser_session_id, amr FROM sessions ",
            $rest
        )
    };
}
pub(super) use select_sessions;

/// `impl AuthStore for $store` over rows of type `$row`: the shared methods,
/// with `self.begin_write()` opening each write transaction and `$append`
/// writing events in it, and the backend's own methods (`$own`). Also the
/// row mappings `session` and `token` in the calling module.
macro_rules! auth_store {
    ($store:ident, $row:ty, $append:path, { $($own:tt)* }) => {
        /// A session from a row holding every column of `sessions` under its own name.
        fn session(row: &$row) -> sqlx::Result<SessionRecord> {
            Ok(SessionRecord {
                id: row.try_get("id")?,
                user_id: row.try_get("user_id")?,
                created_at: row.try_get("created_at")?,
                last_used_at: row.try_get("last_used_at")?,
                expires_at: row.try_get("expires_at")?,
                user_agent: row.try_get("user_agent")?,
                ip_address: row.try_get("ip_address")?,
                revoked_at: row.try_get("revoked_at")?,
                successor_key: SuccessorKey(row.try_get("successor_key")?),
                client_id: row.try_get("client_id")?,
                scope: row.try_get("scope")?,
                browser_session_id: row.try_get("browser_session_id")?,
                amr: row.try_get("amr")?,
            })
        }

        /// A token from a row of `find_token`'s join (its `created_at` renamed).
        fn token(row: &$row) -> sqlx::Result<TokenRecord> {
            Ok(TokenRecord {
                hash: row.try_get("token_hash")?,
                session_id: row.try_get("session_id")?,
                created_at: row.try_get("token_created_at")?,
                retired_at: row.try_get("retired_at")?,
            })
        }

        #[async_trait]
        impl AuthStore for $store {
            $($own)*

            async fn find_token(&self, hash: &str) -> Result<Option<(TokenRecord, SessionRecord)>> {
                let row = sqlx::query(
                    "SELECT t.token_hash, t.session_id, t.created_at AS token_created_at, t.retired_at, \
                     s.id, s.user_id, s.created_at, s.last_used_at, s.expires_at, s.user_agent, s.ip_address, s.revoked_at, s.successor_key, s.client_id, s.scope, s.browser_session_id, s.amr \
                     FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id WHERE t.token_hash = $1",
                )
                .bind(hash)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row
                    .as_ref()
                    .map(|r| Ok::<_, sqlx::Error>((token(r)?, session(r)?)))
                    .transpose()?)
            }

            async fn rotate(
                &self,
                session_id: Uuid,
                old_hash: &str,
                new_hash: &str,
                at: DateTime<Utc>,
            ) -> Result<bool> {
                let mut tx = self.begin_write().await?;
                // The row lock makes a concurrent rotation of the same token wait,
                // then find it retired and change nothing.
                let done = sqlx::query(
                    "UPDATE refresh_tokens SET retired_at = $3 \
                     WHERE token_hash = $1 AND session_id = $2 AND retired_at IS NULL",
                )
                .bind(old_hash)
                .bind(session_id)
                .bind(at)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                let done = sqlx::query(
                    "UPDATE sessions SET last_used_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                )
                .bind(session_id)
                .bind(at)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                sqlx::query(
                    "INSERT INTO refresh_tokens (token_hash, session_id, created_at) VALUES ($1, $2, $3)",
                )
                .bind(new_hash)
                .bind(session_id)
                .bind(at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn touch_successor(
                &self,
                session_id: Uuid,
                successor_hash: &str,
                at: DateTime<Utc>,
            ) -> Result<bool> {
                let done = sqlx::query(
                    "UPDATE sessions SET last_used_at = $3 WHERE id = $1 AND revoked_at IS NULL \
                     AND EXISTS (SELECT 1 FROM refresh_tokens WHERE token_hash = $2 AND session_id = $1)",
                )
                .bind(session_id)
                .bind(successor_hash)
                .bind(at)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn revoke_session(&self, id: Uuid, at: DateTime<Utc>, events: &[Event]) -> Result<bool> {
                let mut tx = self.begin_write().await?;
                let done =
                    sqlx::query("UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                        .bind(id)
                        .bind(at)
                        .execute(&mut *tx)
                        .await?;
                if done.rows_affected() != 1 {
                    return Ok(false);
                }
                $append(&mut tx, events).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn revoke_user_sessions(
                &self,
                user_id: Uuid,
                created_before: DateTime<Utc>,
                at: DateTime<Utc>,
                event_for: &(dyn Fn(Uuid) -> Event + Sync),
            ) -> Result<Vec<Uuid>> {
                let mut tx = self.begin_write().await?;
                let ids: Vec<Uuid> = sqlx::query_scalar(
                    "SELECT id FROM sessions WHERE user_id = $1 AND created_at < $2 AND revoked_at IS NULL",
                )
                .bind(user_id)
                .bind(created_before)
                .fetch_all(&mut *tx)
                .await?;
                let mut events = Vec::with_capacity(ids.len());
                for id in &ids {
                    sqlx::query("UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                        .bind(id)
                        .bind(at)
                        .execute(&mut *tx)
                        .await?;
                    events.push(event_for(*id));
                }
                $append(&mut tx, &events).await?;
                tx.commit().await?;
                Ok(ids)
            }

            async fn get_session(&self, id: Uuid) -> Result<Option<SessionRecord>> {
                let row = sqlx::query(select_sessions!("WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.as_ref().map(session).transpose()?)
            }

            async fn prune(&self, now: DateTime<Utc>, idle_before: DateTime<Utc>) -> Result<u64> {
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    "DELETE FROM refresh_tokens WHERE session_id IN (SELECT id FROM sessions \
                     WHERE (revoked_at < $1 AND (client_id IS NULL OR logout_sent)) \
                     OR (revoked_at IS NULL AND (expires_at < $1 OR last_used_at < $2)))",
                )
                .bind(now)
                .bind(idle_before)
                .execute(&mut *tx)
                .await?;
                let sessions = sqlx::query(
                    // A revoked session of a client stays until its logout token is
                    // delivered or given up (oauth::backchannel).
                    "DELETE FROM sessions WHERE (revoked_at < $1 AND (client_id IS NULL OR logout_sent)) \
                     OR (revoked_at IS NULL AND (expires_at < $1 OR last_used_at < $2))",
                )
                .bind(now)
                .bind(idle_before)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(sessions.rows_affected())
            }
        }
    };
}
pub(super) use auth_store;
