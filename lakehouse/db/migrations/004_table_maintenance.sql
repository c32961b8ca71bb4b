-- One row per maintenance run of a bronze table (lakehouse/maintenance/): when it ran, who asked for it, what it
-- did. The operator's scheduler reads the latest start of each table to know when the next one is due, so the
-- schedule survives restarts and is shared by operator replicas.

CREATE TABLE table_maintenance (
    id                    bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dataset               text        NOT NULL,
    table_name            text        NOT NULL,
    trigger               text        NOT NULL CHECK (trigger IN ('schedule', 'cli')),
    status                text        NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    started_at            timestamptz NOT NULL DEFAULT now(),
    finished_at           timestamptz,
    files_rewritten       integer,
    files_written         integer,
    compaction_snapshot   bigint,
    snapshots_expired     integer,
    orphan_files_removed  integer,
    message               text
);
CREATE INDEX table_maintenance_table_idx ON table_maintenance (table_name, started_at DESC);
