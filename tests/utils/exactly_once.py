"""What "this run landed exactly once" means, checked on the servers: bronze rows, raw and quarantine objects,
PostgreSQL rows, and events under their stable ids."""

from __future__ import annotations

import os
from typing import Any

import psycopg
import pyarrow.compute as pc
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import EqualTo

from lakehouse.events import BRONZE_LAYER_COMPLETE, FILE_UPLOADED, RAW_DATA_READY
from lakehouse.storage.s3 import S3Location
from tests.utils.kafka_events import events_for
from tests.utils.outbox import outbox_rows, wait_until_drained

EVENTS = [FILE_UPLOADED, RAW_DATA_READY, BRONZE_LAYER_COMPLETE]


def bronze_rows(catalog: Catalog, table: str, upload_id: str) -> tuple[int, int]:
    """The upload's rows in the bronze table, and how many distinct order ids they hold."""
    rows = catalog.load_table(table).scan(row_filter=EqualTo("upload_id", upload_id)).to_arrow()
    return rows.num_rows, len(pc.unique(rows["order_id"]))


def run_objects(s3: Any, uri: str, upload_id: str) -> list[str]:
    """Every object of the upload beside `uri` (its raw or quarantine file): one is expected, never two."""
    location = S3Location.parse(uri)
    folder = location.key.rsplit("/", 1)[0] + "/"
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=location.bucket, Prefix=folder)
    return [item["Key"] for page in pages for item in page.get("Contents", []) if upload_id in item["Key"]]


def assert_landed_once(
    run: dict[str, Any], valid: int, rejected: int, *, catalog: Catalog, s3: Any, database_url: str
) -> None:
    """The Succeeded run's rows, objects, metadata rows and events, each exactly once."""
    status, upload_id = run["status"], run["spec"]["uploadId"]
    assert status["phase"] == "Succeeded", status
    assert bronze_rows(catalog, status["table"], upload_id) == (valid, valid)
    assert status["counts"] == {"input": valid + rejected, "valid": valid, "rejected": rejected, "written": valid}
    assert run_objects(s3, status["rawPath"], upload_id) == [S3Location.parse(status["rawPath"]).key]
    if rejected:
        assert run_objects(s3, status["quarantinePath"], upload_id) == [S3Location.parse(status["quarantinePath"]).key]

    with psycopg.connect(database_url) as conn:
        workflow = conn.execute(
            "SELECT phase, snapshot_id FROM workflow_execution WHERE run_id = %s", (upload_id,)
        ).fetchall()
        jobs = conn.execute(
            "SELECT stage, status, rows_in, rows_out FROM job_metrics WHERE run_id = %s ORDER BY stage", (upload_id,)
        ).fetchall()
        checks = conn.execute(
            "SELECT check_name, column_name FROM data_quality_metrics WHERE run_id = %s", (upload_id,)
        ).fetchall()
        lineage = conn.execute(
            "SELECT snapshot_id, rows_written FROM table_lineage WHERE run_id = %s", (upload_id,)
        ).fetchall()
    assert workflow == [("Succeeded", status["snapshotId"])]
    assert jobs == [("ingest", "succeeded", valid + rejected, valid), ("transform", "succeeded", valid, valid)]
    assert checks and len(checks) == len(set(checks)), checks
    assert lineage == [(status["snapshotId"], valid)]

    wait_until_drained(database_url, timeout=60)
    rows = outbox_rows(database_url, upload_id)
    assert [r["topic"] for r in rows] == EVENTS
    events = events_for(os.environ["KAFKA_BOOTSTRAP_SERVERS"], upload_id, EVENTS)
    # At least once, and a repeat carries the same CloudEvent id.
    assert {(e["topic"], e["id"]) for e in events} == {(r["topic"], r["event_id"]) for r in rows}
