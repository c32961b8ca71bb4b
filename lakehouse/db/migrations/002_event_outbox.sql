-- The transactional outbox of pipeline events. A phase change writes its event here in the same
-- transaction as its metadata rows, so the two commit together or not at all; the operator's relay
-- publishes each event to Kafka afterwards and marks it sent once the broker acknowledged it. A run
-- never waits for Kafka, and an event is never lost while Kafka is down or the operator restarts.

CREATE TABLE event_outbox (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- publishing order
    -- The CloudEvent id, stable per run and event type: a replayed phase change adds no second row.
    event_id    uuid        NOT NULL UNIQUE,
    run_id      text        NOT NULL,
    upload_id   text        NOT NULL,  -- the Kafka message key
    topic       text        NOT NULL,
    data        jsonb       NOT NULL,
    event_time  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz,
    attempts    integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error  text
);
-- The relay reads only unsent rows: the oldest first, and per run whether an older one still waits.
CREATE INDEX event_outbox_unsent_idx     ON event_outbox (id) WHERE sent_at IS NULL;
CREATE INDEX event_outbox_unsent_run_idx ON event_outbox (run_id, id) WHERE sent_at IS NULL;
CREATE INDEX event_outbox_sent_idx       ON event_outbox (sent_at) WHERE sent_at IS NOT NULL;
