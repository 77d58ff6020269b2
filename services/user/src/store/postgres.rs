//! The user store on PostgreSQL.

use super::{
    Also, Attempt, Counter, Failures, Result, StoreError, UserRecord, UserStore,
    also::{link_queries, write_also},
    reserve,
};
use crate::{
    domain::{DisplayName, Email, Username},
    mail::links::TokenRecord,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row, postgres::PgRow};
use std::sync::LazyLock;
use suite_events::{Event, outbox};
use uuid::Uuid;

pub struct PgStore {
    pub(super) pool: PgPool,
}

/// A SELECT of every column of `users`, followed by `$rest`.
macro_rules! select_users {
    ($rest:literal) => {
        concat!(
            "SELECT id, username, email, display_name, roles, password_hash, created_at, updated_at, version, sessions_valid_after, email_verified, pending_email FROM users ",
            $rest
        )
    };
}

fn record(row: &PgRow) -> sqlx::Result<UserRecord> {
    Ok(UserRecord {
        id: row.try_get("id")?,
        // Rows hold only parsed values: read back as they are.
        username: Username::from_stored(row.try_get("username")?),
        email: Email::from_stored(row.try_get("email")?),
        display_name: DisplayName::from_stored(row.try_get("display_name")?),
        roles: row.try_get("roles")?,
        password_hash: row.try_get("password_hash")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        version: row.try_get("version")?,
        sessions_valid_after: row.try_get("sessions_valid_after")?,
        email_verified: row.try_get("email_verified")?,
        pending_email: row
            .try_get::<Option<String>, _>("pending_email")?
            .map(Email::from_stored),
    })
}

/// The INSERT of a user (`$1` to `$12`).
const INSERT_USER: &str = "INSERT INTO users (id, username, email, display_name, roles, password_hash, created_at, updated_at, version, sessions_valid_after, email_verified, pending_email) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

/// The conditional UPDATE of a user's mutable columns (`$1` to `$11`).
const UPDATE_USER: &str = "UPDATE users SET username = $2, email = $3, display_name = $4, roles = $5, password_hash = $6, \
     updated_at = $7, sessions_valid_after = $9, email_verified = $10, pending_email = $11, version = version + 1 \
     WHERE id = $1 AND version = $8 AND deleted_at IS NULL";

/// Whether `also` holds letters or tokens and nothing else: those go in the
/// change's own statement (one round trip where a transaction takes six);
/// a redemption or a client to remember takes the transaction.
fn links_only(also: &Also<'_>) -> bool {
    !also.is_empty() && also.redeems.is_none() && also.known_client.is_none()
}

/// Parameters of [`links_after`]'s statements: seven token arrays, eight letter arrays.
const LINK_PARAMS: usize = 15;

/// The statements that write the tokens and letters bound by [`bind_links`]
/// as `$(after+1)` on, if the first change touched a row.
fn links_after(after: usize) -> Vec<String> {
    let p = |i: usize| after + i;
    vec![
        format!(
            "INSERT INTO user_tokens (hash, purpose, user_id, email, bound, created_at, expires_at) \
             SELECT * FROM unnest(${}::bytea[], ${}::text[], ${}::uuid[], ${}::text[], ${}::text[], \
               ${}::timestamptz[], ${}::timestamptz[]) WHERE EXISTS (SELECT 1 FROM changed)",
            p(1),
            p(2),
            p(3),
            p(4),
            p(5),
            p(6),
            p(7)
        ),
        format!(
            "INSERT INTO mail_outbox (id, kind, recipient, recipient_name, subject, text_body, html_body, \
               created_at, attempts, next_attempt_at) \
             SELECT id, kind, recipient, recipient_name, subject, text_body, html_body, created_at, 0, created_at \
             FROM unnest(${}::uuid[], ${}::text[], ${}::text[], ${}::text[], ${}::text[], ${}::text[], \
               ${}::text[], ${}::timestamptz[]) \
               AS l(id, kind, recipient, recipient_name, subject, text_body, html_body, created_at) \
             WHERE EXISTS (SELECT 1 FROM changed)",
            p(8),
            p(9),
            p(10),
            p(11),
            p(12),
            p(13),
            p(14),
            p(15)
        ),
    ]
}

/// Binds `also`'s tokens and letters as the arrays [`links_after`] reads.
fn bind_links<'q>(
    query: sqlx::query::QueryScalar<'q, sqlx::Postgres, i64, sqlx::postgres::PgArguments>,
    also: &Also<'_>,
) -> sqlx::query::QueryScalar<'q, sqlx::Postgres, i64, sqlx::postgres::PgArguments> {
    let (t, l) = (also.tokens, also.letters);
    let now = chrono::Utc::now();
    query
        .bind(t.iter().map(|t| t.hash.clone()).collect::<Vec<_>>())
        .bind(t.iter().map(|t| t.purpose.as_str()).collect::<Vec<_>>())
        .bind(t.iter().map(|t| t.user_id).collect::<Vec<_>>())
        .bind(t.iter().map(|t| t.email.clone()).collect::<Vec<_>>())
        .bind(t.iter().map(|t| t.bound.clone()).collect::<Vec<_>>())
        .bind(t.iter().map(|t| t.created_at).collect::<Vec<_>>())
        .bind(t.iter().map(|t| t.expires_at).collect::<Vec<_>>())
        .bind(l.iter().map(|l| l.id).collect::<Vec<_>>())
        .bind(l.iter().map(|l| l.kind.as_str()).collect::<Vec<_>>())
        .bind(l.iter().map(|l| l.to.clone()).collect::<Vec<_>>())
        .bind(l.iter().map(|l| l.to_name.clone()).collect::<Vec<_>>())
        .bind(l.iter().map(|l| l.subject.clone()).collect::<Vec<_>>())
        .bind(l.iter().map(|l| l.text.clone()).collect::<Vec<_>>())
        .bind(l.iter().map(|l| l.html.clone()).collect::<Vec<_>>())
        .bind(l.iter().map(|_| now).collect::<Vec<_>>())
}

/// Binds `u` as [`INSERT_USER`] reads it, or (`created_at: false`) as
/// [`UPDATE_USER`] does: the same order without the creation time.
macro_rules! bind_user {
    ($query:expr, $u:expr, created_at: $created:expr) => {{
        let u: &UserRecord = $u;
        let query = $query
            .bind(u.id)
            .bind(u.username.as_str())
            .bind(u.email.as_str())
            .bind(u.display_name.as_str())
            .bind(&u.roles)
            .bind(&u.password_hash);
        let query = if $created {
            query.bind(u.created_at)
        } else {
            query
        };
        query
            .bind(u.updated_at)
            .bind(u.version)
            .bind(u.sessions_valid_after)
            .bind(u.email_verified)
            .bind(u.pending_email.as_ref().map(Email::as_str))
    }};
}

#[async_trait]
impl UserStore for PgStore {
    async fn insert(&self, u: &UserRecord, events: &[Event], also: &Also<'_>) -> Result<()> {
        if links_only(also) {
            // A registration with its verification mail: one statement.
            static SQL: LazyLock<String> = LazyLock::new(|| {
                let then = links_after(12);
                let then: Vec<&str> = then.iter().map(String::as_str).collect();
                outbox::pg_changes_with_events(INSERT_USER, &then, 12 + LINK_PARAMS)
            });
            let query = bind_user!(sqlx::query_scalar::<_, i64>(SQL.as_str()), u, created_at: true);
            outbox::bind_pg_events(bind_links(query, also), events)
                .fetch_one(&self.pool)
                .await?;
            return Ok(());
        }
        if !also.is_empty() {
            let mut tx = self.pool.begin().await?;
            bind_user!(sqlx::query(INSERT_USER), u, created_at: true)
                .execute(&mut *tx)
                .await?;
            outbox::append_pg(&mut tx, events).await?;
            write_also!(tx, also);
            tx.commit().await?;
            return Ok(());
        }
        static SQL: LazyLock<String> =
            LazyLock::new(|| outbox::pg_changes_with_events(INSERT_USER, &[], 12));
        let query = bind_user!(sqlx::query_scalar::<_, i64>(SQL.as_str()), u, created_at: true);
        outbox::bind_pg_events(query, events)
            .fetch_one(&self.pool)
            .await?;
        Ok(())
    }

    async fn import(&self, users: &[UserRecord], events: &[Event]) -> Result<Vec<Uuid>> {
        // One statement: the rows that conflict with no live user (nor an
        // earlier row) go in, and only their events are logged with them.
        const SQL: &str = "WITH input AS ( \
               SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], \
                 $6::timestamptz[], $7::timestamptz[]) WITH ORDINALITY \
                 AS i(id, username, email, display_name, password_hash, created_at, updated_at, n)), \
             created AS ( \
               INSERT INTO users (id, username, email, display_name, roles, password_hash, created_at, updated_at, version) \
               SELECT id, username, email, display_name, ARRAY['user'], password_hash, created_at, updated_at, 1 \
               FROM input ORDER BY n ON CONFLICT DO NOTHING RETURNING id), \
             logged AS ( \
               INSERT INTO outbox (id, event_type, subject, time, traceparent, data) \
               SELECT e.id, e.event_type, e.subject, e.time, e.traceparent, e.data \
               FROM unnest($8::uuid[], $9::text[], $10::text[], $11::timestamptz[], $12::text[], $13::bytea[]) \
                 WITH ORDINALITY AS e(id, event_type, subject, time, traceparent, data, n) \
               JOIN input ON input.n = e.n JOIN created ON created.id = input.id \
               ORDER BY e.n RETURNING 1) \
             SELECT id FROM created";
        let query = sqlx::query_scalar::<_, Uuid>(SQL)
            .bind(users.iter().map(|u| u.id).collect::<Vec<_>>())
            .bind(
                users
                    .iter()
                    .map(|u| u.username.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(users.iter().map(|u| u.email.as_str()).collect::<Vec<_>>())
            .bind(
                users
                    .iter()
                    .map(|u| u.display_name.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                users
                    .iter()
                    .map(|u| u.password_hash.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(users.iter().map(|u| u.created_at).collect::<Vec<_>>())
            .bind(users.iter().map(|u| u.updated_at).collect::<Vec<_>>());
        Ok(outbox::bind_pg_events(query, events)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn get(&self, id: Uuid) -> Result<Option<UserRecord>> {
        let row = sqlx::query(select_users!("WHERE id = $1 AND deleted_at IS NULL"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(record).transpose()?)
    }

    async fn find_by_login(&self, login: &str) -> Result<Option<UserRecord>> {
        let row = sqlx::query(select_users!(
            "WHERE (lower(email) = $1 OR lower(username) = $1) AND deleted_at IS NULL LIMIT 1"
        ))
        .bind(login)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(record).transpose()?)
    }

    async fn list(&self, after: Option<Uuid>, limit: i64) -> Result<Vec<UserRecord>> {
        let rows = sqlx::query(select_users!(
            "WHERE deleted_at IS NULL AND ($1::uuid IS NULL OR id > $1) ORDER BY id LIMIT $2"
        ))
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(record).collect::<sqlx::Result<_>>()?)
    }

    async fn count(&self) -> Result<i64> {
        Ok(
            // reltuples of the partial index on live users: its entries, as
            // of the last VACUUM/ANALYZE (-1 before the first: then counted).
            sqlx::query_scalar(
                "SELECT CASE WHEN e.n >= $1 THEN e.n \
                 ELSE (SELECT count(*) FROM users WHERE deleted_at IS NULL) END \
                 FROM (SELECT reltuples::bigint AS n FROM pg_class \
                       WHERE oid = 'users_username_key'::regclass) AS e",
            )
            .bind(super::EXACT_COUNT_BELOW)
            .fetch_one(&self.pool)
            .await?,
        )
    }

    async fn update(&self, u: &UserRecord, events: &[Event], also: &Also<'_>) -> Result<bool> {
        if links_only(also) {
            static SQL: LazyLock<String> = LazyLock::new(|| {
                let then = links_after(11);
                let then: Vec<&str> = then.iter().map(String::as_str).collect();
                outbox::pg_changes_with_events(UPDATE_USER, &then, 11 + LINK_PARAMS)
            });
            let query =
                bind_user!(sqlx::query_scalar::<_, i64>(SQL.as_str()), u, created_at: false);
            let changed = outbox::bind_pg_events(bind_links(query, also), events)
                .fetch_one(&self.pool)
                .await?;
            return Ok(changed == 1);
        }
        if !also.is_empty() {
            let mut tx = self.pool.begin().await?;
            let done = bind_user!(sqlx::query(UPDATE_USER), u, created_at: false)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() != 1 {
                return Ok(false);
            }
            outbox::append_pg(&mut tx, events).await?;
            write_also!(tx, also);
            tx.commit().await?;
            return Ok(true);
        }
        static SQL: LazyLock<String> =
            LazyLock::new(|| outbox::pg_changes_with_events(UPDATE_USER, &[], 11));
        let query = bind_user!(sqlx::query_scalar::<_, i64>(SQL.as_str()), u, created_at: false);
        let changed = outbox::bind_pg_events(query, events)
            .fetch_one(&self.pool)
            .await?;
        Ok(changed == 1)
    }

    async fn replace_hash(&self, id: Uuid, old: &str, new: &str) -> Result<()> {
        sqlx::query("UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2")
            .bind(id)
            .bind(old)
            .bind(new)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete(
        &self,
        id: Uuid,
        version: i64,
        at: DateTime<Utc>,
        events: &[Event],
    ) -> Result<bool> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            outbox::pg_changes_with_events(
                "UPDATE users SET deleted_at = $3, sessions_valid_after = $3, updated_at = $3, version = version + 1 \
                 WHERE id = $1 AND version = $2 AND deleted_at IS NULL",
                &[],
                3,
            )
        });
        let query = sqlx::query_scalar::<_, i64>(SQL.as_str())
            .bind(id)
            .bind(version)
            .bind(at);
        let changed = outbox::bind_pg_events(query, events)
            .fetch_one(&self.pool)
            .await?;
        Ok(changed == 1)
    }

    async fn append_events(&self, events: &[Event], also: &Also<'_>) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        outbox::append_pg(&mut tx, events).await?;
        write_also!(tx, also);
        tx.commit().await?;
        Ok(())
    }

    async fn find_token(&self, hash: &[u8]) -> Result<Option<TokenRecord>> {
        find_token(&self.pool, hash).await
    }

    async fn recent_links(
        &self,
        user: Uuid,
        email: &str,
        since: DateTime<Utc>,
    ) -> Result<(i64, i64)> {
        recent_links(&self.pool, user, email, since).await
    }

    async fn knows_client(&self, user: Uuid, client: &str) -> Result<(bool, bool)> {
        knows_client(&self.pool, user, client).await
    }

    async fn prune_tokens(&self, before: DateTime<Utc>) -> Result<u64> {
        prune_tokens(&self.pool, before).await
    }

    async fn failures(&self, key: &str) -> Result<Option<Failures>> {
        let row: Option<(i64, DateTime<Utc>, Option<DateTime<Utc>>)> = sqlx::query_as(
            "SELECT failures, last_failure_at, locked_until FROM password_failures \
             WHERE key = $1 AND failures > 0",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(count, last_failure_at, locked_until)| Failures {
            count,
            last_failure_at,
            locked_until,
        }))
    }

    async fn reserve_attempt(
        &self,
        counters: &[Counter<'_>],
        at: DateTime<Utc>,
        forget_before: DateTime<Utc>,
    ) -> Result<Attempt> {
        let keys: Vec<&str> = counters.iter().map(|c| c.key).collect();
        let mut tx = self.pool.begin().await?;
        // One statement makes every counter's row exist and locks it until
        // commit, returning what it held (a concurrent check of the same key
        // waits here): the checks of one counter take their turns. Every
        // statement on these rows takes them in key order (byte order),
        // so no two can wait for each other.
        let rows: Vec<(String, i64, DateTime<Utc>, Option<DateTime<Utc>>)> = sqlx::query_as(
            "INSERT INTO password_failures (key, failures, last_failure_at) \
             SELECT k, 0, $2 FROM unnest($1::text[]) AS c(k) ORDER BY k COLLATE \"C\" \
             ON CONFLICT (key) DO UPDATE SET failures = password_failures.failures \
             RETURNING key, failures, last_failure_at, locked_until",
        )
        .bind(&keys)
        .bind(at)
        .fetch_all(&mut *tx)
        .await?;
        let stored: Vec<Option<Failures>> = keys
            .iter()
            .map(|k| {
                rows.iter()
                    .find(|r| r.0 == *k)
                    .filter(|r| r.1 > 0)
                    .map(|r| Failures {
                        count: r.1,
                        last_failure_at: r.2,
                        locked_until: r.3,
                    })
            })
            .collect();
        let next = match reserve(counters, &stored, at, forget_before)? {
            Ok(next) => next,
            Err(locked) => {
                tx.commit().await?;
                return Ok(locked);
            }
        };
        sqlx::query(
            "UPDATE password_failures AS p \
             SET failures = n.failures, last_failure_at = n.at, locked_until = n.until \
             FROM unnest($1::text[], $2::int8[], $3::timestamptz[], $4::timestamptz[]) \
               AS n(key, failures, at, until) \
             WHERE p.key = n.key",
        )
        .bind(&keys)
        .bind(next.iter().map(|f| f.count).collect::<Vec<_>>())
        .bind(next.iter().map(|f| f.last_failure_at).collect::<Vec<_>>())
        .bind(next.iter().map(|f| f.locked_until).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Attempt::Counted(next))
    }

    async fn release_attempt(
        &self,
        clear: &str,
        decrement: &str,
        decrement_free: i64,
    ) -> Result<()> {
        // One statement, atomic without a transaction's extra round trips,
        // taking both rows in key order as the reservation does (
        // a DELETE beside an UPDATE in one statement takes its rows in no
        // set order, and deadlocked against reservations). The cleared
        // counter is zeroed rather than deleted: a zero counts as none, and
        // the pruning deletes it later.
        sqlx::query(
            "INSERT INTO password_failures AS p (key, failures, last_failure_at) \
             SELECT k, 0, $4 FROM unnest(ARRAY[$1, $2]::text[]) AS c(k) ORDER BY k COLLATE \"C\" \
             ON CONFLICT (key) DO UPDATE SET \
               failures = CASE WHEN p.key = $1 THEN 0 ELSE GREATEST(p.failures - 1, 0) END, \
               locked_until = CASE WHEN p.key = $1 OR p.failures - 1 <= $3 THEN NULL \
                 ELSE p.locked_until END",
        )
        .bind(clear)
        .bind(decrement)
        .bind(decrement_free)
        .bind(chrono::Utc::now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn prune_failures(&self, before: DateTime<Utc>, now: DateTime<Utc>) -> Result<u64> {
        // Rows a check holds are skipped (they are in use): the pruning never
        // waits for a check, nor a check for it.
        let done = sqlx::query(
            "DELETE FROM password_failures WHERE key IN ( \
               SELECT key FROM password_failures WHERE last_failure_at < $1 \
               AND (locked_until IS NULL OR locked_until < $2) FOR UPDATE SKIP LOCKED)",
        )
        .bind(before)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}

link_queries!(sqlx::PgPool);
