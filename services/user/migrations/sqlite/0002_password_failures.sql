-- Failed password checks per counter (a digest of the account, or of the
-- account and client address): the password throttle.
CREATE TABLE password_failures (
    key TEXT PRIMARY KEY NOT NULL,
    failures INTEGER NOT NULL,
    last_failure_at TEXT NOT NULL,
    locked_until TEXT
);
