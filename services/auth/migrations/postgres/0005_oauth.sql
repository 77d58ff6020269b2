-- The OpenID Connect provider: clients, pending authorization requests,
-- codes, consents and browser (SSO) sessions; OAuth refresh sessions name
-- their client, scopes and browser session.

-- A client's settings (redirect URIs, grant types, scopes, ...) are one JSON
-- document: they are read and written whole, never searched.
CREATE TABLE oauth_clients (
    id UUID PRIMARY KEY,
    client_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    confidential BOOLEAN NOT NULL,
    settings TEXT NOT NULL,
    secret_hash TEXT,
    previous_secret_hash TEXT,
    previous_secret_expires_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- Authorization requests waiting for a sign-in or a consent (minutes).
CREATE TABLE oauth_requests (
    id TEXT PRIMARY KEY,
    binding_hash TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    client_id TEXT NOT NULL,
    params TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);

-- Authorization codes, known only by their hash; single use.
CREATE TABLE oauth_codes (
    code_hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    user_id UUID NOT NULL,
    grant_data TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at TIMESTAMPTZ,
    session_id UUID
);
CREATE INDEX oauth_codes_client_id_idx ON oauth_codes (client_id);

-- The scopes a user allowed a client.
CREATE TABLE oauth_consents (
    id UUID PRIMARY KEY,
    user_id UUID NOT NULL,
    client_id TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    UNIQUE (user_id, client_id)
);
CREATE INDEX oauth_consents_client_id_idx ON oauth_consents (client_id);

-- Browser sessions (single sign-on), known by the hash of the cookie.
CREATE TABLE browser_sessions (
    id UUID PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE,
    user_id UUID NOT NULL,
    username TEXT NOT NULL,
    auth_time TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);

ALTER TABLE sessions ADD COLUMN client_id TEXT;
ALTER TABLE sessions ADD COLUMN scope TEXT;
ALTER TABLE sessions ADD COLUMN browser_session_id UUID;
CREATE INDEX sessions_client_id_idx ON sessions (client_id);
CREATE INDEX sessions_browser_session_id_idx ON sessions (browser_session_id);
