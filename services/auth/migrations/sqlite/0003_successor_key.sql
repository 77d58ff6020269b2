-- Each session's secret for deriving its refresh tokens' successors, so
-- that every redemption of one token inside the grace window hands out the
-- same successor (a session never forks). Existing sessions get one too.
ALTER TABLE sessions ADD COLUMN successor_key BLOB NOT NULL DEFAULT x'';
UPDATE sessions SET successor_key = randomblob(32);
