-- The transactional outbox: events written with the change that caused
-- them, published in `seq` order by the relay, pruned after a while.
CREATE TABLE outbox (
    seq BIGSERIAL PRIMARY KEY,
    id UUID NOT NULL,
    event_type TEXT NOT NULL,
    subject TEXT NOT NULL,
    time TIMESTAMPTZ NOT NULL,
    traceparent TEXT,
    data BYTEA NOT NULL,
    published_at TIMESTAMPTZ
);
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;
