//! What a change writes beside the user row, in its transaction: the
//! letters it mails (the mail outbox), the link tokens they carry, the
//! token it redeems, the client a sign-in came from. The statements are
//! the same on both databases (`$n` placeholders work on both).

use crate::mail::{letters::Letter, links::NewToken};
use uuid::Uuid;

/// The writes that go with a change (all empty: none).
#[derive(Debug, Default, Clone, Copy)]
pub struct Also<'a> {
    pub letters: &'a [Letter],
    pub tokens: &'a [NewToken],
    /// The link token (its hash) the change redeems: marked used with it,
    /// and the whole change refused (`TokenSpent`) if it was used already.
    pub redeems: Option<&'a [u8]>,
    /// A client (a digest of its User-Agent) the user signed in with.
    pub known_client: Option<(Uuid, &'a str)>,
}

impl Also<'_> {
    pub fn is_empty(&self) -> bool {
        self.letters.is_empty()
            && self.tokens.is_empty()
            && self.redeems.is_none()
            && self.known_client.is_none()
    }
}

/// Writes `$also` in the transaction `$tx`; `Err(TokenSpent)` if its
/// redemption came second (the caller's transaction is then dropped:
/// rolled back).
macro_rules! write_also {
    ($tx:expr, $also:expr) => {{
        let also: &$crate::store::Also<'_> = $also;
        if let Some(hash) = also.redeems {
            let done = sqlx::query(
                "UPDATE user_tokens SET used_at = $2 WHERE hash = $1 AND used_at IS NULL",
            )
            .bind(hash)
            .bind(chrono::Utc::now())
            .execute(&mut *$tx)
            .await?;
            if done.rows_affected() != 1 {
                return Err($crate::store::StoreError::TokenSpent);
            }
        }
        for t in also.tokens {
            sqlx::query(
                "INSERT INTO user_tokens (hash, purpose, user_id, email, bound, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&t.hash)
            .bind(t.purpose.as_str())
            .bind(t.user_id)
            .bind(&t.email)
            .bind(&t.bound)
            .bind(t.created_at)
            .bind(t.expires_at)
            .execute(&mut *$tx)
            .await?;
        }
        for l in also.letters {
            let now = chrono::Utc::now();
            sqlx::query(
                "INSERT INTO mail_outbox (id, kind, recipient, recipient_name, subject, text_body, html_body, \
                 created_at, attempts, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $8)",
            )
            .bind(l.id)
            .bind(l.kind.as_str())
            .bind(&l.to)
            .bind(&l.to_name)
            .bind(&l.subject)
            .bind(&l.text)
            .bind(&l.html)
            .bind(now)
            .execute(&mut *$tx)
            .await?;
        }
        if let Some((user, client)) = also.known_client {
            sqlx::query(
                "INSERT INTO known_clients (user_id, client, first_seen_at) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(user)
            .bind(client)
            .bind(chrono::Utc::now())
            .execute(&mut *$tx)
            .await?;
        }
    }};
}
pub(super) use write_also;

/// The queries about tokens and clients, as functions of a pool of type
/// `$pool`: the same on both databases.
macro_rules! link_queries {
    ($pool:ty) => {
        pub(super) async fn find_token(pool: &$pool, hash: &[u8]) -> Result<Option<TokenRecord>> {
            let row = sqlx::query(
                "SELECT purpose, user_id, email, bound, expires_at, used_at FROM user_tokens WHERE hash = $1",
            )
            .bind(hash)
            .fetch_optional(pool)
            .await?;
            let Some(row) = row else { return Ok(None) };
            let purpose: String = row.try_get("purpose")?;
            let purpose = $crate::mail::links::Purpose::parse(&purpose)
                .ok_or_else(|| StoreError::Other(format!("unknown token purpose {purpose:?}")))?;
            Ok(Some(TokenRecord {
                purpose,
                user_id: row.try_get("user_id")?,
                email: row.try_get("email")?,
                bound: row.try_get("bound")?,
                expires_at: row.try_get("expires_at")?,
                used_at: row.try_get("used_at")?,
            }))
        }

        pub(super) async fn recent_links(
            pool: &$pool,
            user: Uuid,
            email: &str,
            since: DateTime<Utc>,
        ) -> Result<(i64, i64)> {
            let (account, address): (i64, i64) = sqlx::query_as(
                "SELECT \
                   (SELECT count(*) FROM user_tokens WHERE user_id = $1 AND purpose <> 'revert_email' AND created_at > $3), \
                   (SELECT count(*) FROM user_tokens WHERE lower(email) = $2 AND purpose <> 'revert_email' AND created_at > $3)",
            )
            .bind(user)
            .bind(email.to_lowercase())
            .bind(since)
            .fetch_one(pool)
            .await?;
            Ok((account, address))
        }

        pub(super) async fn knows_client(pool: &$pool, user: Uuid, client: &str) -> Result<(bool, bool)> {
            let (this, any): (i64, i64) = sqlx::query_as(
                "SELECT \
                   (SELECT count(*) FROM known_clients WHERE user_id = $1 AND client = $2), \
                   (SELECT count(*) FROM (SELECT 1 FROM known_clients WHERE user_id = $1 LIMIT 1) AS k)",
            )
            .bind(user)
            .bind(client)
            .fetch_one(pool)
            .await?;
            Ok((this > 0, any > 0))
        }

        pub(super) async fn prune_tokens(pool: &$pool, before: DateTime<Utc>) -> Result<u64> {
            let done = sqlx::query("DELETE FROM user_tokens WHERE expires_at < $1")
                .bind(before)
                .execute(pool)
                .await?;
            Ok(done.rows_affected())
        }
    };
}
pub(super) use link_queries;
