-- Ids are 16-byte BLOBs (so they sort like UUIDs); timestamps are RFC 3339
-- TEXT in UTC as sqlx writes them, which compare correctly as strings.

-- A session: one login, and the chain of refresh tokens rotated from it.
CREATE TABLE sessions (
    id BLOB PRIMARY KEY NOT NULL,
    user_id BLOB NOT NULL,
    created_at TEXT NOT NULL,
    last_used_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    user_agent TEXT NOT NULL DEFAULT '',
    ip_address TEXT NOT NULL DEFAULT '',
    revoked_at TEXT
);

-- Listing a user's sessions in id order.
CREATE INDEX sessions_user_id_idx ON sessions (user_id, id);

-- Refresh tokens, known only by their hash (SHA-256, base64url).
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    session_id BLOB NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    retired_at TEXT
);

CREATE INDEX refresh_tokens_session_id_idx ON refresh_tokens (session_id);

-- Failed logins per login name, for throttling.
CREATE TABLE login_failures (
    login TEXT PRIMARY KEY NOT NULL,
    failures INTEGER NOT NULL,
    last_failure_at TEXT NOT NULL,
    locked_until TEXT
);
