"""Writes a run's workflow, job, data-quality and lineage rows to the platform database.

Every write is an upsert on the row's natural key, so a retried step rewrites its rows
instead of adding new ones. `MetadataStore.transaction` groups writes that must commit
together: a phase change's rows and its event in the outbox (lakehouse/db/outbox.py).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg

from lakehouse.db import outbox
from lakehouse.events import PipelineEvent
from lakehouse.ingest.validation import CheckResult


@dataclass(frozen=True)
class WorkflowRow:
    run_id: str
    namespace: str
    dataset: str
    upload_id: str
    source_uri: str
    source_format: str
    phase: str
    ingest_engine: str | None = None
    transform_engine: str | None = None
    target_table: str | None = None
    snapshot_id: int | None = None
    attempts: int = 0
    message: str | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None


@dataclass(frozen=True)
class JobRow:
    run_id: str
    stage: str  # ingest | transform
    engine: str
    attempt: int
    status: str  # running | succeeded | failed
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    rows_in: int | None = None
    rows_out: int | None = None
    rows_rejected: int | None = None
    bytes_in: int | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class LineageRow:
    run_id: str
    source_uri: str
    source_sha256: str | None
    raw_uri: str | None
    quarantine_uri: str | None
    target_table: str
    snapshot_id: int | None
    rows_written: int


class MetadataTransaction:
    """Writes that commit together, or not at all."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self._conn = conn

    def upsert_workflow(self, row: WorkflowRow) -> None:
        self._conn.execute(
            """
            INSERT INTO workflow_execution AS w (run_id, namespace, dataset, upload_id, source_uri,
                source_format, phase, ingest_engine, transform_engine, target_table, snapshot_id,
                attempts, message, started_at, finished_at)
            VALUES (%(run_id)s, %(namespace)s, %(dataset)s, %(upload_id)s, %(source_uri)s,
                %(source_format)s, %(phase)s, %(ingest_engine)s, %(transform_engine)s, %(target_table)s,
                %(snapshot_id)s, %(attempts)s, %(message)s, COALESCE(%(started_at)s, %(finished_at)s, now()),
                %(finished_at)s)
            ON CONFLICT (run_id) DO UPDATE SET
                phase = EXCLUDED.phase,
                ingest_engine = COALESCE(EXCLUDED.ingest_engine, w.ingest_engine),
                transform_engine = COALESCE(EXCLUDED.transform_engine, w.transform_engine),
                target_table = COALESCE(EXCLUDED.target_table, w.target_table),
                snapshot_id = COALESCE(EXCLUDED.snapshot_id, w.snapshot_id),
                attempts = GREATEST(EXCLUDED.attempts, w.attempts),
                message = EXCLUDED.message,
                finished_at = EXCLUDED.finished_at,
                updated_at = now()
            """,
            row.__dict__,
        )

    def record_job(self, row: JobRow) -> None:
        self._conn.execute(
            """
            INSERT INTO job_metrics (run_id, stage, engine, attempt, status, rows_in, rows_out,
                rows_rejected, bytes_in, error_message, started_at, finished_at)
            VALUES (%(run_id)s, %(stage)s, %(engine)s, %(attempt)s, %(status)s, %(rows_in)s, %(rows_out)s,
                %(rows_rejected)s, %(bytes_in)s, %(error_message)s, %(started_at)s, %(finished_at)s)
            ON CONFLICT (run_id, stage, attempt) DO UPDATE SET
                engine = EXCLUDED.engine, status = EXCLUDED.status, rows_in = EXCLUDED.rows_in,
                rows_out = EXCLUDED.rows_out, rows_rejected = EXCLUDED.rows_rejected,
                bytes_in = EXCLUDED.bytes_in, error_message = EXCLUDED.error_message,
                finished_at = EXCLUDED.finished_at
            """,
            row.__dict__,
        )

    def record_quality(self, run_id: str, dataset: str, checks: Iterable[CheckResult]) -> None:
        with self._conn.cursor() as cursor:
            cursor.executemany(
                """
                INSERT INTO data_quality_metrics (run_id, dataset, check_name, column_name,
                    passed_count, failed_count)
                VALUES (%s, %s, %s, %s, %s, %s)
                ON CONFLICT (run_id, check_name, column_name) DO UPDATE SET
                    passed_count = EXCLUDED.passed_count, failed_count = EXCLUDED.failed_count,
                    measured_at = now()
                """,
                [(run_id, dataset, c.check_name, c.column, c.passed, c.failed) for c in checks],
            )

    def record_lineage(self, row: LineageRow) -> None:
        self._conn.execute(
            """
            INSERT INTO table_lineage (run_id, source_uri, source_sha256, raw_uri, quarantine_uri,
                target_table, snapshot_id, rows_written)
            VALUES (%(run_id)s, %(source_uri)s, %(source_sha256)s, %(raw_uri)s, %(quarantine_uri)s,
                %(target_table)s, %(snapshot_id)s, %(rows_written)s)
            ON CONFLICT (run_id, target_table) DO UPDATE SET
                raw_uri = EXCLUDED.raw_uri, quarantine_uri = EXCLUDED.quarantine_uri,
                snapshot_id = EXCLUDED.snapshot_id, rows_written = EXCLUDED.rows_written,
                recorded_at = now()
            """,
            row.__dict__,
        )

    def quality_checks(self, run_id: str) -> list[CheckResult]:
        """The data-quality counts recorded for the run (by its ingest)."""
        rows = self._conn.execute(
            "SELECT check_name, column_name, passed_count, failed_count FROM data_quality_metrics WHERE run_id = %s"
            " ORDER BY id",
            (run_id,),
        ).fetchall()
        return [CheckResult(name, column, passed, failed) for name, column, passed, failed in rows]

    def add_event(self, event: PipelineEvent) -> None:
        """Queues `event` for Kafka; it is sent only if this transaction commits."""
        outbox.add(self._conn, event)

    def add_lineage(self, event: PipelineEvent) -> None:
        """Queues an OpenLineage event (lakehouse/lineage) for the lineage backend, if this transaction commits."""
        outbox.add(self._conn, event, outbox.LINEAGE)


class MetadataStore:
    """Transactions on the platform database, over connections kept between them: opening one (TCP and the
    password handshake) cost ~15-20 ms here, more than a phase change's writes (bench/small_run_steps.py). A
    transaction takes an idle connection, checked with a round trip (one a server restart broke is replaced, so
    it costs no attempt), or opens one; it gives it back once committed and closes it when anything failed."""

    def __init__(self, database_url: str, connect_timeout: int = 5, keep_idle: int = 4) -> None:
        self._url = database_url
        self._connect_timeout = connect_timeout
        self._keep_idle = keep_idle
        self._idle: list[psycopg.Connection] = []
        self._lock = threading.Lock()

    @contextmanager
    def transaction(self) -> Iterator[MetadataTransaction]:
        """Commits every write made through it when the block ends, or none when it raises."""
        conn = self._take()
        try:
            with conn.transaction():
                yield MetadataTransaction(conn)
        except BaseException:
            conn.close()
            raise
        self._give_back(conn)

    def _take(self) -> psycopg.Connection:
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                # A kept connection may outlive its server's host: unacknowledged sends end it after 10 s (and
                # idle ones are probed) instead of after the kernel's minutes of retransmissions.
                return psycopg.connect(
                    self._url,
                    connect_timeout=self._connect_timeout,
                    autocommit=True,
                    tcp_user_timeout=10_000,
                    keepalives_idle=30,
                    keepalives_interval=10,
                    keepalives_count=3,
                )
            try:
                conn.execute("SELECT 1")
                return conn
            except psycopg.Error:
                conn.close()

    def _give_back(self, conn: psycopg.Connection) -> None:
        with self._lock:
            if len(self._idle) < self._keep_idle:
                self._idle.append(conn)
                return
        conn.close()

    def upsert_workflow(self, row: WorkflowRow) -> None:
        with self.transaction() as writes:
            writes.upsert_workflow(row)

    def record_job(self, row: JobRow) -> None:
        with self.transaction() as writes:
            writes.record_job(row)
