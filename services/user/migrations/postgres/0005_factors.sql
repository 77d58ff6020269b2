-- Second factors. A TOTP factor's secret is sealed (ChaCha20-Poly1305) with
-- the service's FACTOR_KEY, bound to its user and id: the database alone
-- does not give the secrets away. `last_step` is the last time step (30 s)
-- a code was accepted for: a code is good once.
CREATE TABLE user_factors (
    id UUID PRIMARY KEY,
    user_id UUID NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    secret BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    confirmed_at TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ,
    last_step BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX user_factors_user ON user_factors (user_id, created_at);

-- Recovery codes, as the SHA-256 of the user id and the code (random, 80
-- bits: a fast hash suffices). Each works once.
CREATE TABLE recovery_codes (
    hash BYTEA PRIMARY KEY,
    user_id UUID NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    used_at TIMESTAMPTZ
);
CREATE INDEX recovery_codes_user ON recovery_codes (user_id);
