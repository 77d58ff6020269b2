-- Passkeys are factors too (kind `passkey`): their `secret` holds the
-- credential (its public key and signature counter, JSON; nothing secret),
-- and `credential_id` the authenticator's id for it, registered once across
-- all users.
ALTER TABLE user_factors ADD COLUMN credential_id BYTEA;
CREATE UNIQUE INDEX user_factors_credential_key ON user_factors (credential_id)
    WHERE credential_id IS NOT NULL;

-- A WebAuthn ceremony between its two calls: the server's state (JSON),
-- single use, short-lived, and bound to what started it (`binding`: the
-- login challenge or browser it belongs to). `user_id` is unset for a
-- discoverable (passwordless) sign-in, where the passkey names its user.
CREATE TABLE passkey_ceremonies (
    hash TEXT PRIMARY KEY NOT NULL,
    purpose TEXT NOT NULL,
    user_id UUID,
    binding TEXT NOT NULL,
    state TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at TIMESTAMPTZ
);
CREATE INDEX passkey_ceremonies_expires ON passkey_ceremonies (expires_at);
