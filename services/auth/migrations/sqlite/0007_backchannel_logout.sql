-- Back-channel logout (OpenID Connect Back-Channel Logout 1.0): a revoked
-- session of an OAuth client owes its client a logout token until one is
-- delivered or given up. The debt is the session's own state (revoked, of
-- a client, not yet told), written by whatever revokes it: no way of ending
-- a session (logout, revocation, password change, deletion, reuse
-- detection) can lose one, and pruning keeps the session until it is paid.
-- logout_attempts doubles as the claim's version between replicas;
-- logout_retry_at is when the next attempt is due (NULL: at once).
ALTER TABLE sessions ADD COLUMN logout_sent INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN logout_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN logout_retry_at TEXT;
-- Sessions that ended before this migration owe nothing.
UPDATE sessions SET logout_sent = 1 WHERE revoked_at IS NOT NULL;
CREATE INDEX sessions_logout_owed_idx ON sessions (revoked_at)
    WHERE client_id IS NOT NULL AND NOT logout_sent;
