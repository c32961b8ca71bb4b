"""What "this run landed exactly once" means, checked on the servers once a fault test's run is over: bronze
rows, raw and quarantine objects, PostgreSQL rows, and events under their stable ids.

Bronze rows are counted by the run's upload id; the PostgreSQL rows (lakehouse/db/) and the outbox events are
those of the test's own database, and each event must be on Kafka under the outbox's stable id.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pyarrow.compute as pc
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import EqualTo

from lakehouse.events import BRONZE_LAYER_COMPLETE, FILE_UPLOADED, RAW_DATA_READY
from lakehouse.storage.s3 import S3Location
from tests.utils.kafka_events import events_for
from tests.utils.outbox import outbox_rows, wait_until_drained
from tests.utils.stack import stack_env

SUCCEEDED_EVENTS = [FILE_UPLOADED, RAW_DATA_READY, BRONZE_LAYER_COMPLETE]


def bronze_rows(catalog: Catalog, identifier: str, upload_id: str) -> tuple[int, int]:
    """The upload's rows in the bronze table, and how many distinct order ids they hold."""
    rows = catalog.load_table(identifier).scan(row_filter=EqualTo("upload_id", upload_id)).to_arrow()
    return rows.num_rows, len(pc.unique(rows["order_id"]))


def assert_objects_once(s3: Any, status: dict[str, Any], upload_id: str) -> None:
    """The run's raw object once, and its quarantine object at most once (a run with no rejected row may have
    none), under their day's prefix: no second key for the upload."""
    for uri, required in ((status["rawPath"], True), (status["quarantinePath"], bool(status["counts"]["rejected"]))):
        location = S3Location.parse(uri)
        prefix = location.key.rsplit("/", 1)[0] + "/"
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=location.bucket, Prefix=prefix)
        keys = [item["Key"] for page in pages for item in page.get("Contents", []) if upload_id in item["Key"]]
        assert keys == [location.key] or (not required and keys == []), (uri, keys)


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
    # One succeeded job per stage; an attempt a server fault failed keeps its own row (job_metrics is per attempt).
    succeeded = [job for job in jobs if job[1] == "succeeded"]
    assert succeeded == [("ingest", "succeeded", valid + rejected, valid), ("transform", "succeeded", valid, valid)]
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


def assert_landed_once(
    run: dict[str, Any], valid: int, rejected: int, *, catalog: Catalog, s3: Any, database_url: str
) -> None:
    """The Succeeded run's rows, objects, metadata rows and events, each exactly once."""
    status, upload_id = run["status"], run["spec"]["uploadId"]
    assert status["phase"] == "Succeeded", status
    assert bronze_rows(catalog, status["table"], upload_id) == (valid, valid)
    assert status["counts"] == {"input": valid + rejected, "valid": valid, "rejected": rejected, "written": valid}
    assert_objects_once(s3, status, upload_id)
    assert_metadata_once(database_url, upload_id, status, valid, rejected)
    wait_until_drained(database_url, timeout=60)
    assert_events_once(database_url, upload_id, SUCCEEDED_EVENTS)
