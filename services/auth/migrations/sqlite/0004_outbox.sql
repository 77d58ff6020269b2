-- The transactional outbox: events written with the change that caused
-- them, published in `seq` order by the relay and deleted once JetStream
-- has acknowledged them (so the table holds only what is still to go).
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id BLOB NOT NULL,
    event_type TEXT NOT NULL,
    subject TEXT NOT NULL,
    time TEXT NOT NULL,
    traceparent TEXT,
    data BLOB NOT NULL
);
