-- Each session's secret for deriving its refresh tokens' successors, so
-- that every redemption of one token inside the grace window hands out the
-- same successor (a session never forks). Existing sessions get one too
-- (gen_random_uuid is a strong random source; two make 244 random bits).
ALTER TABLE sessions ADD COLUMN successor_key BYTEA;
UPDATE sessions
SET successor_key = decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex');
ALTER TABLE sessions ALTER COLUMN successor_key SET NOT NULL;
