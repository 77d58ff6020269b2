-- Whether the user proved the address is theirs, and an address they asked
-- to change to (it replaces `email` once confirmed from that address).
ALTER TABLE users ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN pending_email TEXT;

-- The single-use tokens of mailed links, as in the PostgreSQL migration.
CREATE TABLE user_tokens (
    hash BLOB PRIMARY KEY NOT NULL,
    purpose TEXT NOT NULL,
    user_id BLOB NOT NULL,
    email TEXT NOT NULL,
    bound TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT
);
CREATE INDEX user_tokens_user ON user_tokens (user_id, purpose, created_at);
CREATE INDEX user_tokens_email ON user_tokens (lower(email), purpose, created_at);

-- The mail outbox, as in the PostgreSQL migration.
CREATE TABLE mail_outbox (
    id BLOB PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    recipient TEXT NOT NULL,
    recipient_name TEXT NOT NULL,
    subject TEXT NOT NULL,
    text_body TEXT NOT NULL,
    html_body TEXT NOT NULL,
    created_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error TEXT,
    failed_at TEXT
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE failed_at IS NULL;

-- The clients each user has signed in with, as in the PostgreSQL migration.
CREATE TABLE known_clients (
    user_id BLOB NOT NULL,
    client TEXT NOT NULL,
    first_seen_at TEXT NOT NULL,
    PRIMARY KEY (user_id, client)
);
