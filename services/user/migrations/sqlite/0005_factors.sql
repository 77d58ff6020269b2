-- Second factors, as in the PostgreSQL migration.
CREATE TABLE user_factors (
    id BLOB PRIMARY KEY NOT NULL,
    user_id BLOB NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    secret BLOB NOT NULL,
    created_at TEXT NOT NULL,
    confirmed_at TEXT,
    last_used_at TEXT,
    last_step INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX user_factors_user ON user_factors (user_id, created_at);

-- Recovery codes, as in the PostgreSQL migration.
CREATE TABLE recovery_codes (
    hash BLOB PRIMARY KEY NOT NULL,
    user_id BLOB NOT NULL,
    created_at TEXT NOT NULL,
    used_at TEXT
);
CREATE INDEX recovery_codes_user ON recovery_codes (user_id);
