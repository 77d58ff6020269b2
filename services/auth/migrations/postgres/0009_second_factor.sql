-- How each session's user signed in (RFC 8176 values, space-separated),
-- carried by its access tokens as `amr`; empty for sessions older than this.
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT '';
ALTER TABLE browser_sessions ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';

-- A sign-in waiting for its second factor: the password was right. Stored
-- as the SHA-256 of the challenge; single use (`used_at`), short-lived,
-- and dead after a few wrong codes. `request_id` ties a sign-in page's
-- challenge to its pending authorization request (empty: the API's login).
CREATE TABLE login_challenges (
    hash TEXT PRIMARY KEY NOT NULL,
    user_id UUID NOT NULL,
    request_id TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    ip_address TEXT NOT NULL,
    -- The user service's passkey ceremony for the user's passkeys, if any.
    passkey_ceremony TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at TIMESTAMPTZ
);
CREATE INDEX login_challenges_expires ON login_challenges (expires_at);
