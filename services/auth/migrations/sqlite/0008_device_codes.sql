-- The device authorization grant (RFC 8628): a CLI or a TV polls with its
-- device code while its user types the user code on another device.
-- (SQLite: ids are 16-byte BLOBs, timestamps RFC 3339 TEXT in UTC, as in 0001.)
--
-- Both codes are known only by their SHA-256 hashes: the device code is 256
-- random bits; the user code is short, so its uniqueness among the live
-- requests is the index's, and its guessing is the gateway's rate limit's.
-- status: pending, approved, denied or redeemed (tokens issued, once).
-- Once approved, user_id and grant_data (the sign-in it stands for, JSON)
-- are set; session_id names the session its redemption opened.
CREATE TABLE oauth_device_codes (
    device_code_hash TEXT PRIMARY KEY NOT NULL,
    user_code_hash TEXT NOT NULL UNIQUE,
    client_id TEXT NOT NULL,
    scopes TEXT NOT NULL,
    status TEXT NOT NULL,
    interval_secs INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    last_polled_at TEXT,
    user_id BLOB,
    grant_data TEXT,
    session_id BLOB
);
CREATE INDEX oauth_device_codes_client_id_idx ON oauth_device_codes (client_id);
CREATE INDEX oauth_device_codes_expires_at_idx ON oauth_device_codes (expires_at);
