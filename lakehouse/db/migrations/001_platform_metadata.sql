-- Platform metadata: what every ingestion run did, how good its data was, and where it went.
-- Rows are keyed by the run id (the IngestionRun's name, equal to the upload id) so every
-- writer can upsert and a retried step never duplicates a row.

CREATE TABLE workflow_execution (
    run_id            text        PRIMARY KEY,
    namespace         text        NOT NULL DEFAULT 'default',
    dataset           text        NOT NULL,
    upload_id         text        NOT NULL,
    source_uri        text        NOT NULL,
    source_format     text        NOT NULL CHECK (source_format IN ('csv', 'json', 'parquet')),
    ingest_engine     text,
    transform_engine  text,
    phase             text        NOT NULL CHECK (phase IN
                        ('Pending', 'Ingesting', 'RawReady', 'Transforming', 'Succeeded', 'Failed')),
    target_table      text,
    snapshot_id       bigint,
    attempts          integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    message           text,
    started_at        timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (finished_at IS NULL OR finished_at >= started_at)
);
CREATE INDEX workflow_execution_phase_idx   ON workflow_execution (phase, updated_at DESC);
CREATE INDEX workflow_execution_dataset_idx ON workflow_execution (dataset, started_at DESC);

-- One row per stage attempt of a run (ingest, transform).
CREATE TABLE job_metrics (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id         text        NOT NULL REFERENCES workflow_execution (run_id) ON DELETE CASCADE,
    stage          text        NOT NULL CHECK (stage IN ('ingest', 'transform')),
    engine         text        NOT NULL,
    attempt        integer     NOT NULL DEFAULT 1 CHECK (attempt >= 1),
    status         text        NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    rows_in        bigint      CHECK (rows_in >= 0),
    rows_out       bigint      CHECK (rows_out >= 0),
    rows_rejected  bigint      CHECK (rows_rejected >= 0),
    bytes_in       bigint      CHECK (bytes_in >= 0),
    error_message  text,
    started_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz,
    duration_ms    bigint GENERATED ALWAYS AS
                     ((EXTRACT(EPOCH FROM (finished_at - started_at)) * 1000)::bigint) STORED,
    UNIQUE (run_id, stage, attempt)
);
CREATE INDEX job_metrics_status_idx ON job_metrics (status, started_at DESC);

-- One row per data-quality check of a run: null counts per column, each contract rule's counts.
CREATE TABLE data_quality_metrics (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id        text        NOT NULL REFERENCES workflow_execution (run_id) ON DELETE CASCADE,
    dataset       text        NOT NULL,
    check_name    text        NOT NULL,
    column_name   text        NOT NULL DEFAULT '',
    passed_count  bigint      NOT NULL CHECK (passed_count >= 0),
    failed_count  bigint      NOT NULL CHECK (failed_count >= 0),
    passed        boolean     GENERATED ALWAYS AS (failed_count = 0) STORED,
    measured_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (run_id, check_name, column_name)
);
CREATE INDEX data_quality_metrics_dataset_idx ON data_quality_metrics (dataset, measured_at DESC);

-- Where a run's data came from and where it landed (upload -> raw -> bronze snapshot).
CREATE TABLE table_lineage (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id          text        NOT NULL REFERENCES workflow_execution (run_id) ON DELETE CASCADE,
    source_uri      text        NOT NULL,
    source_sha256   text        CHECK (source_sha256 ~ '^[0-9a-f]{64}$'),
    raw_uri         text,
    quarantine_uri  text,
    target_table    text        NOT NULL,
    snapshot_id     bigint,
    rows_written    bigint      CHECK (rows_written >= 0),
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (run_id, target_table)
);
CREATE INDEX table_lineage_target_idx ON table_lineage (target_table, recorded_at DESC);
