"""RunRecords: which rows and events each kind of phase change leaves (fakes stand in for PostgreSQL and
the outbox relay)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from lakehouse_operator.engines.base import IngestOutcome
from lakehouse_operator.records import Accepted, IngestSucceeded, RunFailed, RunRecords
from lakehouse_operator.status_writer import PhaseChange

from lakehouse.k8s.ingestionrun.phase import Phase
from lakehouse.k8s.ingestionrun.spec import IngestEngineName


class FakeMetadata:
    """Keeps what a transaction wrote only when it commits, as PostgreSQL does."""

    def __init__(self) -> None:
        self.workflow: list[Any] = []
        self.jobs: list[Any] = []
        self.quality: list[Any] = []
        self.events: list[Any] = []
        self.commits = 0

    @contextmanager
    def transaction(self) -> Iterator[FakeMetadata]:
        kept = {name: list(rows) for name, rows in vars(self).items() if isinstance(rows, list)}
        try:
            yield self
        except BaseException:
            for name, rows in kept.items():
                setattr(self, name, rows)
            raise
        self.commits += 1

    def add_event(self, event: Any) -> None:
        self.events.append(event)

    def upsert_workflow(self, row: Any) -> None:
        self.workflow.append(row)

    def record_job(self, row: Any) -> None:
        self.jobs.append(row)

    def record_quality(self, run_id: str, dataset: str, checks: Any) -> None:
        self.quality.append((run_id, dataset, list(checks)))


class FakeRelay:
    def __init__(self) -> None:
        self.deliveries: list[float] = []

    def deliver(self, timeout: float) -> None:
        self.deliveries.append(timeout)


def body(phase: str, engines: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": "up-1", "namespace": "ns"},
        "spec": {"uploadId": "up-1", "dataset": "orders", "source": {"uri": "s3://uploads/o.csv", "format": "csv"}},
        "status": {"phase": phase, "startTime": "2026-12-01T10:00:00Z", "engines": engines or {}},
    }


def records() -> tuple[RunRecords, FakeMetadata, FakeRelay]:
    metadata, relay = FakeMetadata(), FakeRelay()
    return RunRecords(metadata, relay, 5.0), metadata, relay  # type: ignore[arg-type]


def test_a_run_failing_before_its_transform_starts_has_no_transform_job() -> None:
    runs, metadata, _ = records()
    failure = RunFailed(Phase.RAW_READY, "start-transform", 1, "EngineUnavailable", "spark is not enabled")
    change = PhaseChange(Phase.FAILED, failure.reason, failure.message)
    runs.write(body("RawReady", {"ingest": "builtin"}), change, failure)

    assert metadata.jobs == []
    assert [(e.topic, e.data["stage"]) for e in metadata.events] == [("ingestion-failed", "start-transform")]
    (row,) = metadata.workflow
    assert (row.phase, row.ingest_engine, row.finished_at is not None) == ("Failed", "builtin", True)


def test_an_ingest_failure_is_a_failed_job_of_its_engine() -> None:
    runs, metadata, _ = records()
    failure = RunFailed(Phase.INGESTING, "ingest", 2, "MissingColumns", "no order_id")
    runs.write(body("Ingesting", {"ingest": "nifi"}), PhaseChange(Phase.FAILED, "MissingColumns", "no"), failure)

    (job,) = metadata.jobs
    assert (job.stage, job.engine, job.attempt, job.status) == ("ingest", "nifi", 2, "failed")


def test_the_workflow_row_shows_the_change_not_the_old_status() -> None:
    runs, metadata, _ = records()
    outcome = IngestOutcome(10, 9, 1, "s3://raw/k", "s3://quarantine/k", 100)
    started = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    # The status starts RawReady's own attempts at 0; the rows keep the 2 attempts the ingest needed.
    change = PhaseChange(Phase.RAW_READY, "RawWritten", "9 valid", fields={"attempts": 0})
    runs.write(
        body("Ingesting", {"ingest": "builtin"}),
        change,
        IngestSucceeded(IngestEngineName.BUILTIN, 2, started, outcome, "orders"),
    )
    runs.write(body("Pending"), PhaseChange(Phase.PENDING, "Accepted", "accepted"), Accepted())

    assert [(r.phase, r.attempts) for r in metadata.workflow] == [("RawReady", 2), ("Pending", 0)]
    assert [(j.stage, j.attempt) for j in metadata.jobs] == [("ingest", 2)]
    assert [e.topic for e in metadata.events] == ["raw-data-ready"]
    assert (metadata.jobs[0].rows_in, metadata.jobs[0].rows_out, metadata.jobs[0].rows_rejected) == (10, 9, 1)


def test_a_change_writes_its_rows_and_event_in_one_transaction_then_asks_for_delivery() -> None:
    runs, metadata, relay = records()
    outcome = IngestOutcome(10, 9, 1, "s3://raw/k", "s3://quarantine/k", 100)
    change = PhaseChange(Phase.RAW_READY, "RawWritten", "9 valid", fields={"attempts": 1})
    record = IngestSucceeded(IngestEngineName.BUILTIN, 1, dt.datetime(2026, 12, 1, tzinfo=dt.UTC), outcome, "orders")
    runs.write(body("Ingesting", {"ingest": "builtin"}), change, record)

    assert metadata.commits == 1
    assert (len(metadata.jobs), len(metadata.workflow), len(metadata.events)) == (1, 1, 1)
    (event,) = metadata.events
    assert (event.run_id, event.upload_id, event.data["counts"]) == (
        "up-1",
        "up-1",
        {"input": 10, "valid": 9, "rejected": 1},
    )
    assert relay.deliveries == [5.0]


def test_a_failed_write_leaves_neither_rows_nor_event() -> None:
    """The event goes with its rows: when the workflow row cannot be written, the job row and the event
    are rolled back too, and the retry writes all three."""
    runs, metadata, relay = records()

    def refuse(row: Any) -> None:
        raise ConnectionError("server closed the connection unexpectedly")

    metadata.upsert_workflow = refuse  # type: ignore[method-assign]
    failure = RunFailed(Phase.INGESTING, "ingest", 1, "MissingColumns", "no order_id")
    with pytest.raises(ConnectionError):
        runs.write(body("Ingesting", {"ingest": "builtin"}), PhaseChange(Phase.FAILED, "MissingColumns", "no"), failure)

    assert (metadata.jobs, metadata.events, metadata.commits) == ([], [], 0)
    assert relay.deliveries == []
