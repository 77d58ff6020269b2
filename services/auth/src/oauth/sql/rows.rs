//! The provider's tables' columns, its rows as records, and the revocation of refresh sessions
//! inside a transaction: expanded by `oauth_store!` once per database.

/// Every column of `oauth_clients`.
macro_rules! client_columns {
    () => {
        "id, client_id, name, confidential, settings, secret_hash, previous_secret_hash, \
         previous_secret_expires_at, created_at, updated_at"
    };
}
/// Every column of `oauth_device_codes`.
macro_rules! device_columns {
    () => {
        "device_code_hash, user_code_hash, client_id, scopes, status, interval_secs, created_at, \
         expires_at, last_polled_at, user_id, grant_data, session_id"
    };
}
/// Every column of `oauth_consents`.
macro_rules! consent_columns {
    () => {
        "id, user_id, client_id, scopes, created_at, updated_at"
    };
}
/// Every column of `browser_sessions`.
macro_rules! browser_columns {
    () => {
        "id, secret_hash, user_id, username, auth_time, last_used_at, expires_at, revoked_at, amr"
    };
}

macro_rules! oauth_rows {
    ($db:ty, $row:ty) => {
        fn client(row: &$row) -> sqlx::Result<ClientRecord> {
            Ok(ClientRecord {
                id: row.try_get("id")?,
                client_id: row.try_get("client_id")?,
                name: row.try_get("name")?,
                confidential: row.try_get("confidential")?,
                settings: from_json("settings", &row.try_get::<String, _>("settings")?)?,
                secret_hash: row.try_get("secret_hash")?,
                previous_secret_hash: row.try_get("previous_secret_hash")?,
                previous_secret_expires_at: row.try_get("previous_secret_expires_at")?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
            })
        }

        fn consent(row: &$row) -> sqlx::Result<ConsentRecord> {
            Ok(ConsentRecord {
                id: row.try_get("id")?,
                user_id: row.try_get("user_id")?,
                client_id: row.try_get("client_id")?,
                scopes: scopes_of(&row.try_get::<String, _>("scopes")?),
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
            })
        }

        fn device(row: &$row) -> sqlx::Result<DeviceCodeRecord> {
            let status: String = row.try_get("status")?;
            let grant: Option<String> = row.try_get("grant_data")?;
            Ok(DeviceCodeRecord {
                device_code_hash: row.try_get("device_code_hash")?,
                user_code_hash: row.try_get("user_code_hash")?,
                client_id: row.try_get("client_id")?,
                scopes: scopes_of(&row.try_get::<String, _>("scopes")?),
                status: DeviceStatus::parse(&status).ok_or_else(|| sqlx::Error::ColumnDecode {
                    index: "status".into(),
                    source: format!("not a device status: {status:.32}").into(),
                })?,
                interval_secs: row.try_get("interval_secs")?,
                created_at: row.try_get("created_at")?,
                expires_at: row.try_get("expires_at")?,
                last_polled_at: row.try_get("last_polled_at")?,
                user_id: row.try_get("user_id")?,
                grant: grant
                    .as_deref()
                    .map(|g| from_json::<CodeGrant>("grant_data", g))
                    .transpose()?,
                session_id: row.try_get("session_id")?,
            })
        }

        fn browser(row: &$row) -> sqlx::Result<BrowserSession> {
            Ok(BrowserSession {
                id: row.try_get("id")?,
                secret_hash: row.try_get("secret_hash")?,
                user_id: row.try_get("user_id")?,
                username: row.try_get("username")?,
                auth_time: row.try_get("auth_time")?,
                last_used_at: row.try_get("last_used_at")?,
                expires_at: row.try_get("expires_at")?,
                revoked_at: row.try_get("revoked_at")?,
                amr: suite_tokens::scope_list(&row.try_get::<String, _>("amr")?),
            })
        }

        /// Revokes the live sessions `which` names inside `tx`; their ids
        /// and events.
        async fn revoke_in(
            tx: &mut sqlx::Transaction<'static, $db>,
            which: SessionsOf<'_>,
            at: DateTime<Utc>,
            event_for: EventFor<'_>,
        ) -> sqlx::Result<(Vec<Uuid>, Vec<Event>)> {
            let rows = match which {
                SessionsOf::Client(client_id) => sqlx::query(
                    "SELECT id, user_id FROM sessions WHERE client_id = $1 AND revoked_at IS NULL",
                )
                .bind(client_id)
                .fetch_all(&mut **tx)
                .await?,
                SessionsOf::UserOfClient(user_id, client_id) => {
                    sqlx::query(
                        "SELECT id, user_id FROM sessions WHERE user_id = $1 AND client_id = $2 \
                         AND revoked_at IS NULL",
                    )
                    .bind(user_id)
                    .bind(client_id)
                    .fetch_all(&mut **tx)
                    .await?
                }
                SessionsOf::Browser(id) => {
                    sqlx::query(
                        "SELECT id, user_id FROM sessions WHERE browser_session_id = $1 \
                         AND revoked_at IS NULL",
                    )
                    .bind(id)
                    .fetch_all(&mut **tx)
                    .await?
                }
            };
            let mut ids = Vec::with_capacity(rows.len());
            let mut events = Vec::with_capacity(rows.len());
            for row in &rows {
                let id: Uuid = row.try_get("id")?;
                let user_id: Uuid = row.try_get("user_id")?;
                sqlx::query(
                    "UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                )
                .bind(id)
                .bind(at)
                .execute(&mut **tx)
                .await?;
                ids.push(id);
                events.push(event_for(id, user_id));
            }
            Ok((ids, events))
        }
    };
}
