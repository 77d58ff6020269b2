-- Failed password checks per counter (a digest of the account, or of the
-- account and client address): the password throttle.
CREATE TABLE password_failures (
    key TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    last_failure_at TIMESTAMPTZ NOT NULL,
    locked_until TIMESTAMPTZ
);
