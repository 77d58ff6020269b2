-- The transactional outbox: events written with the change that caused
-- them, published in `seq` order by the relay, pruned after a while.
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id BLOB NOT NULL,
    event_type TEXT NOT NULL,
    subject TEXT NOT NULL,
    time TEXT NOT NULL,
    traceparent TEXT,
    data BLOB NOT NULL,
    published_at TEXT
);
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;
