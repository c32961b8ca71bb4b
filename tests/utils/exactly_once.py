"""What a fault test checks once its run is over: the run's rows, objects and events exist exactly once.

Bronze rows are counted by the run's upload id; the PostgreSQL rows (lakehouse/db/) and the outbox events are
those of the test's own database, and each event must be on Kafka under the outbox's stable id.
"""

from __future__ import annotations

from typing import Any

import psycopg
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import EqualTo

from lakehouse.storage.s3 import S3Location
from tests.utils.kafka_events import events_for
from tests.utils.outbox import outbox_rows
from tests.utils.stack import stack_env


def bronze_rows(catalog: Catalog, identifier: str, upload_id: str) -> int:
    table = catalog.load_table(identifier)
    return table.scan(row_filter=EqualTo("upload_id", upload_id)).to_arrow().num_rows


def assert_objects_once(s3: Any, status: dict[str, Any], upload_id: str) -> None:
    """The run's raw and quarantine objects, each once under its day's prefix (no second key for the upload)."""
    for uri in (status["rawPath"], status["quarantinePath"]):
        location = S3Location.parse(uri)
        prefix = location.key.rsplit("/", 1)[0] + "/"
        listed = s3.list_objects_v2(Bucket=location.bucket, Prefix=prefix).get("Contents", [])
        assert [o["Key"] for o in listed if upload_id in o["Key"]] == [location.key], (uri, listed)


def assert_metadata_once(database_url: str, run_id: str, status: dict[str, Any], valid: int, rejected: int) -> None:
    """The workflow, job, data-quality and lineage rows of a run that succeeded, each once with the run's counts."""
    with psycopg.connect(database_url) as conn:
        workflow = conn.execute(
            "SELECT phase, snapshot_id FROM workflow_execution WHERE run_id = %s", (run_id,)
        ).fetchall()
        jobs = conn.execute(
            "SELECT stage, status, rows_in, rows_out FROM job_metrics WHERE run_id = %s ORDER BY stage",
            (run_id,),
        ).fetchall()
        checks = conn.execute(
            "SELECT check_name, column_name, passed_count, failed_count FROM data_quality_metrics WHERE run_id = %s",
            (run_id,),
        ).fetchall()
        lineage = conn.execute(
            "SELECT snapshot_id, rows_written FROM table_lineage WHERE run_id = %s", (run_id,)
        ).fetchall()
    assert workflow == [("Succeeded", status["snapshotId"])]
    assert jobs == [("ingest", "succeeded", valid + rejected, valid), ("transform", "succeeded", valid, valid)]
    assert ("row_count", "", valid, rejected) in checks
    assert all(p + f == valid + rejected for name, _, p, f in checks if name == "not_null")
    assert len(checks) == len({(name, column) for name, column, _, _ in checks})
    assert lineage == [(status["snapshotId"], valid)]


def assert_events_once(database_url: str, run_id: str, topics: list[str]) -> None:
    """One outbox event per phase, in order, and each on Kafka (at least once) under its stable id only."""
    rows = outbox_rows(database_url, run_id)
    assert [r["topic"] for r in rows] == topics
    bootstrap = stack_env("KAFKA_BOOTSTRAP_SERVERS")["KAFKA_BOOTSTRAP_SERVERS"]
    events = events_for(bootstrap, run_id, topics)
    assert {(e["topic"], e["id"]) for e in events} == {(r["topic"], r["event_id"]) for r in rows}
