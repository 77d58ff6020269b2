-- The OpenID Connect provider: clients, pending authorization requests,
-- (SQLite: ids are 16-byte BLOBs, timestamps RFC 3339 TEXT in UTC, as in 0001.)
-- codes, consents and browser (SSO) sessions; OAuth refresh sessions name
-- their client, scopes and browser session.

-- A client's settings (redirect URIs, grant types, scopes, ...) are one JSON
-- document: they are read and written whole, never searched.
CREATE TABLE oauth_clients (
    id BLOB PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    confidential INTEGER NOT NULL,
    settings TEXT NOT NULL,
    secret_hash TEXT,
    previous_secret_hash TEXT,
    previous_secret_expires_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- Authorization requests waiting for a sign-in or a consent (minutes).
CREATE TABLE oauth_requests (
    id TEXT PRIMARY KEY NOT NULL,
    binding_hash TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    client_id TEXT NOT NULL,
    params TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

-- Authorization codes, known only by their hash; single use.
CREATE TABLE oauth_codes (
    code_hash TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL,
    user_id BLOB NOT NULL,
    grant_data TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT,
    session_id BLOB
);
CREATE INDEX oauth_codes_client_id_idx ON oauth_codes (client_id);

-- The scopes a user allowed a client.
CREATE TABLE oauth_consents (
    id BLOB PRIMARY KEY NOT NULL,
    user_id BLOB NOT NULL,
    client_id TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (user_id, client_id)
);
CREATE INDEX oauth_consents_client_id_idx ON oauth_consents (client_id);

-- Browser sessions (single sign-on), known by the hash of the cookie.
CREATE TABLE browser_sessions (
    id BLOB PRIMARY KEY NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    user_id BLOB NOT NULL,
    username TEXT NOT NULL,
    auth_time TEXT NOT NULL,
    last_used_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked_at TEXT
);

ALTER TABLE sessions ADD COLUMN client_id TEXT;
ALTER TABLE sessions ADD COLUMN scope TEXT;
ALTER TABLE sessions ADD COLUMN browser_session_id BLOB;
CREATE INDEX sessions_client_id_idx ON sessions (client_id);
CREATE INDEX sessions_browser_session_id_idx ON sessions (browser_session_id);
