-- Personal access tokens: named, scoped, expiring secrets for scripts. The
-- secret is kept only as its SHA-256 (it is random: nothing to brute-force),
-- looked up by that hash, so an unknown token and a wrong one are the same
-- miss. `prefix` is its first characters, to recognise it in lists; `amr`
-- how its creator had signed in (space-separated), which its exchanged
-- tokens carry; `last_used_at` is written at most once a minute.
CREATE TABLE personal_access_tokens (
    id BLOB PRIMARY KEY NOT NULL,
    user_id BLOB NOT NULL,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    amr TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at TEXT
);
CREATE INDEX personal_access_tokens_user ON personal_access_tokens (user_id, created_at);
