"""Kafka stopped while runs go through: the runs do not wait for it, and no event is lost.

Each run's events wait in the event outbox of the test's own database (lakehouse/db/outbox.py) until
Kafka is back, then arrive on their topics with their stable ids.

The issue's outage lasted 10 minutes, more than the run's retry budget then allowed (events were
published synchronously, and one not acknowledged within 15 s failed the step's attempt). These tests
shrink the budget instead of waiting 10 minutes: the operator runs with LAKEHOUSE_MAX_ATTEMPTS=1, so a
run that needed Kafka would fail at the first event Kafka did not take within 15 s. In the first test
Kafka stays down until the run is over and the relay has counted two failed publishes (each waits 10 s
for an acknowledgement), so Kafka was unreachable longer than that whole budget.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kubernetes import client

from lakehouse.devtools.sample_data import orders
from lakehouse.events import BRONZE_LAYER_COMPLETE, FILE_UPLOADED, INGESTION_FAILED, RAW_DATA_READY
from tests.utils.kafka_events import events_for
from tests.utils.operator_process import OperatorProcess
from tests.utils.outbox import outbox_rows, wait_until_drained
from tests.utils.runs import Upload, create_run, run_body, upload, wait_for_phase
from tests.utils.servers import stopped
from tests.utils.stack import stack_env
from tests.utils.waiting import wait_until

pytestmark = pytest.mark.integration
SUCCEEDED_EVENTS = [FILE_UPLOADED, RAW_DATA_READY, BRONZE_LAYER_COMPLETE]
FAILED_EVENTS = [FILE_UPLOADED, INGESTION_FAILED]
TARGET = {"namespace": "bronze_faults", "table": "orders"}


def start_operator(namespace: str, database_url: str, log: Path, **env: str) -> OperatorProcess:
    settings = {"DATABASE_URL": database_url, "LAKEHOUSE_MAX_ATTEMPTS": "1", **env}
    return OperatorProcess(namespace, log, settings, metrics=True).start()


def assert_waiting(database_url: str, run_id: str, topics: list[str]) -> list[dict[str, Any]]:
    """The run's events, one per topic in the order of its phases, all still unsent."""
    rows = outbox_rows(database_url, run_id)
    assert [r["topic"] for r in rows] == topics
    assert [r["sent_at"] for r in rows] == [None] * len(topics)
    return rows


def assert_arrived(run_id: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every event of the outbox is on its topic with its stable id; a repeat may only carry the same id."""
    bootstrap = stack_env("KAFKA_BOOTSTRAP_SERVERS")["KAFKA_BOOTSTRAP_SERVERS"]
    events = events_for(bootstrap, run_id, [r["topic"] for r in rows])
    assert {(e["topic"], e["id"]) for e in events} == {(r["topic"], r["event_id"]) for r in rows}
    assert all(e["headers"]["ce_id"].decode() == e["id"] for e in events)
    return events


def run_to_the_end(
    custom_objects: client.CustomObjectsApi, namespace: str, up: Upload, timeout: float
) -> tuple[dict[str, Any], float]:
    """Creates the run for `up` and waits for it to end; returns it and the seconds that took."""
    created = time.monotonic()
    create_run(custom_objects, namespace, run_body(up, "orders", target=TARGET))
    run = wait_for_phase(custom_objects, namespace, up.upload_id, {"Succeeded", "Failed"}, timeout=timeout)
    return run, time.monotonic() - created


def workflow_phase(database_url: str, run_id: str) -> list[tuple[str]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT phase FROM workflow_execution WHERE run_id = %s", (run_id,)).fetchall()


def test_a_run_succeeds_while_kafka_is_down_and_its_events_follow(
    run_namespace: str, custom_objects: client.CustomObjectsApi, s3: Any, migrated_database_url: str, tmp_path: Path
) -> None:
    operator = start_operator(run_namespace, migrated_database_url, tmp_path / "operator.log")
    sample = orders(200, invalid_every=20)
    up = upload(s3, sample.csv_bytes(), "orders", "csv")
    try:
        with stopped("kafka") as outage:
            run, run_seconds = run_to_the_end(custom_objects, run_namespace, up, timeout=180)

            assert run["status"]["phase"] == "Succeeded", run["status"]
            assert run["status"]["counts"]["written"] == len(sample.valid)
            assert workflow_phase(migrated_database_url, up.upload_id) == [("Succeeded",)]
            rows = assert_waiting(migrated_database_url, up.upload_id, SUCCEEDED_EVENTS)
            # The relay really met a Kafka that was down, for longer than the old budget of one attempt.
            wait_until(
                lambda: operator.metric("lakehouse_event_publish_failures_total", {"topic": FILE_UPLOADED}) >= 2,
                "two publishes that failed",
                timeout=90,
            )
            wait_until(
                lambda: operator.metric("lakehouse_outbox_depth") == len(SUCCEEDED_EVENTS),
                "the run's events counted on the outbox gauge",
                timeout=60,
            )

        drain_seconds = wait_until_drained(migrated_database_url, timeout=120)
        assert_arrived(up.upload_id, rows)
        wait_until(lambda: operator.metric("lakehouse_outbox_depth") == 0, "an empty outbox on the gauge", timeout=30)
    finally:
        operator.stop()
    print(
        f"run to Succeeded with Kafka down: {run_seconds:.1f}s; Kafka stopped for {outage['down_seconds']:.1f}s; "
        f"outbox drained {outage['start_seconds'] + drain_seconds:.1f}s after Kafka's start began "
        f"(its start script took {outage['start_seconds']:.1f}s)"
    )


def test_a_run_that_fails_while_kafka_is_down_ends_failed_and_its_event_follows(
    run_namespace: str, custom_objects: client.CustomObjectsApi, s3: Any, migrated_database_url: str, tmp_path: Path
) -> None:
    operator = start_operator(run_namespace, migrated_database_url, tmp_path / "operator.log")
    up = upload(s3, b"order_id,amount\n1,2.00\n", "orders", "csv")  # most of the contract's columns are missing
    try:
        with stopped("kafka") as outage:
            run, run_seconds = run_to_the_end(custom_objects, run_namespace, up, timeout=60)

            failed = next(c for c in run["status"]["conditions"] if c["type"] == "Failed")
            assert failed["reason"] == "MissingColumns", run["status"]
            assert workflow_phase(migrated_database_url, up.upload_id) == [("Failed",)]
            rows = assert_waiting(migrated_database_url, up.upload_id, FAILED_EVENTS)

        drain_seconds = wait_until_drained(migrated_database_url, timeout=120)
        events = assert_arrived(up.upload_id, rows)
    finally:
        operator.stop()
    failure = next(e for e in events if e["topic"] == INGESTION_FAILED)
    assert (failure["data"]["stage"], failure["data"]["reason"]) == ("ingest", "MissingColumns")
    print(
        f"run to Failed with Kafka down: {run_seconds:.1f}s; Kafka stopped for {outage['down_seconds']:.1f}s; "
        f"outbox drained {outage['start_seconds'] + drain_seconds:.1f}s after Kafka's start began"
    )


def test_events_left_by_a_killed_operator_are_sent_by_the_next_one(
    run_namespace: str, custom_objects: client.CustomObjectsApi, s3: Any, migrated_database_url: str, tmp_path: Path
) -> None:
    """SIGKILL right after the transform's records (its event is in the outbox, the status not yet moved),
    while Kafka is down. The next operator replays the step, which adds no second event, finishes the run,
    and sends what the killed one left once Kafka is back."""
    env = {"LAKEHOUSE_CRASH_POINTS": "transform.after-event", "LAKEHOUSE_CRASH_STATE_DIR": str(tmp_path)}
    log = tmp_path / "operator.log"
    first = start_operator(run_namespace, migrated_database_url, log, **env)
    up = upload(s3, orders(50).csv_bytes(), "orders", "csv")
    second: OperatorProcess | None = None
    try:
        with stopped("kafka"):
            create_run(custom_objects, run_namespace, run_body(up, "orders", target=TARGET))
            assert first.wait_exit(timeout=180) == -9, "the operator should have been killed after the transform"
            rows = assert_waiting(migrated_database_url, up.upload_id, SUCCEEDED_EVENTS)

            second = start_operator(run_namespace, migrated_database_url, log, **env)
            run = wait_for_phase(custom_objects, run_namespace, up.upload_id, {"Succeeded", "Failed"}, timeout=180)
            assert run["status"]["phase"] == "Succeeded", run["status"]
            replayed = assert_waiting(migrated_database_url, up.upload_id, SUCCEEDED_EVENTS)
            assert [r["event_id"] for r in replayed] == [r["event_id"] for r in rows]

        wait_until_drained(migrated_database_url, timeout=120)
        assert_arrived(up.upload_id, rows)
    finally:
        first.kill()
        if second is not None:
            second.stop()
