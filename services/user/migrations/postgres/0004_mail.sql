-- Whether the user proved the address is theirs, and an address they asked
-- to change to (it replaces `email` once confirmed from that address).
ALTER TABLE users ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ADD COLUMN pending_email TEXT;

-- The single-use tokens of mailed links (verification, email change and its
-- undoing, password reset), stored as the SHA-256 of the secret. `email` is
-- the address the link was sent to; `bound` is what must still hold for the
-- token to work (the address it verifies or replaces, a digest of the
-- password a reset would replace).
CREATE TABLE user_tokens (
    hash BYTEA PRIMARY KEY,
    purpose TEXT NOT NULL,
    user_id UUID NOT NULL,
    email TEXT NOT NULL,
    bound TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at TIMESTAMPTZ
);
-- The per-account and per-address counts of recent mails.
CREATE INDEX user_tokens_user ON user_tokens (user_id, purpose, created_at);
CREATE INDEX user_tokens_email ON user_tokens (lower(email), purpose, created_at);

-- The mail outbox: messages written in the transaction of the change that
-- causes them, delivered by the mailer and deleted once the SMTP server
-- (or the development mailbox) has taken them. `attempts` is the claim: a
-- replica sends a row only after raising it from the value it read.
CREATE TABLE mail_outbox (
    id UUID PRIMARY KEY,
    kind TEXT NOT NULL,
    recipient TEXT NOT NULL,
    recipient_name TEXT NOT NULL,
    subject TEXT NOT NULL,
    text_body TEXT NOT NULL,
    html_body TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    last_error TEXT,
    failed_at TIMESTAMPTZ
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE failed_at IS NULL;

-- The clients (a digest of the user and User-Agent) each user has signed in
-- with: a sign-in from a new one is told by mail.
CREATE TABLE known_clients (
    user_id UUID NOT NULL,
    client TEXT NOT NULL,
    first_seen_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, client)
);
