-- Ending a user's browser sessions and forgetting their consents when the
-- user is deleted or changes their password (the events consumer).
CREATE INDEX browser_sessions_user_id_idx ON browser_sessions (user_id);
CREATE INDEX oauth_consents_user_id_idx ON oauth_consents (user_id, id);
