"""PostgreSQL restarted mid-run: the run's metadata rows are still written, each exactly once.

A phase change writes its rows and its event in one transaction (operator/lakehouse_operator/records.py),
so a restart either loses the whole change, which the retried attempt writes again, or none of it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kubernetes import client
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import EqualTo

from lakehouse.devtools.sample_data import orders
from lakehouse.events import BRONZE_LAYER_COMPLETE, FILE_UPLOADED, RAW_DATA_READY
from tests.utils.kafka_events import events_for
from tests.utils.operator_process import OperatorProcess
from tests.utils.outbox import outbox_rows, wait_until_drained
from tests.utils.runs import TERMINAL, create_run, get_run, run_body, upload, wait_for_phase
from tests.utils.servers import stopped
from tests.utils.waiting import wait_until

pytestmark = pytest.mark.integration
TARGET = {"namespace": "bronze_faults", "table": "orders"}
EVENTS = [FILE_UPLOADED, RAW_DATA_READY, BRONZE_LAYER_COMPLETE]
IN_FLIGHT = {"Ingesting", "RawReady", "Transforming"}


def retrying(custom_objects: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any] | None:
    """The run's status once an attempt of its current step has failed."""
    status = get_run(custom_objects, namespace, name).get("status") or {}
    ready = next((c for c in status.get("conditions", []) if c["type"] == "Ready"), {})
    return status if ready.get("reason") == "Retrying" else None


def test_a_postgres_restart_mid_run_loses_no_row_and_doubles_none(
    run_namespace: str,
    custom_objects: client.CustomObjectsApi,
    s3: Any,
    catalog: Catalog,
    migrated_database_url: str,
    tmp_path: Path,
) -> None:
    """PostgreSQL stops while the run ingests and starts again once a step has failed for want of it: every
    phase change needs PostgreSQL, so the run cannot pass the next one while it is down. The operator has
    attempts enough (LAKEHOUSE_MAX_ATTEMPTS=8) to outlast the restart."""
    sample = orders(150_000, invalid_every=1000, seed=5)
    up = upload(s3, sample.csv_bytes(), "orders", "csv")
    env = {"DATABASE_URL": migrated_database_url, "LAKEHOUSE_MAX_ATTEMPTS": "8"}
    operator = OperatorProcess(run_namespace, tmp_path / "operator.log", env).start()
    try:
        create_run(custom_objects, run_namespace, run_body(up, "orders", target=TARGET))
        seen = wait_for_phase(custom_objects, run_namespace, up.upload_id, IN_FLIGHT | TERMINAL, timeout=120, poll=0.05)
        assert seen["status"]["phase"] in IN_FLIGHT, "the run ended before PostgreSQL could be stopped under it"
        with stopped("postgres") as outage:
            failed_attempt = wait_until(
                lambda: retrying(custom_objects, run_namespace, up.upload_id),
                "an attempt that failed while PostgreSQL was down",
                timeout=120,
            )
        run = wait_for_phase(custom_objects, run_namespace, up.upload_id, {"Succeeded", "Failed"}, timeout=300)
        drain_seconds = wait_until_drained(migrated_database_url, timeout=120)
    finally:
        operator.stop()

    status = run["status"]
    assert status["phase"] == "Succeeded", status
    assert "failed" in failed_attempt["message"], failed_attempt
    valid, rejected = len(sample.valid), len(sample.rejected)
    table = catalog.load_table(f"{TARGET['namespace']}.{TARGET['table']}")
    assert table.scan(row_filter=EqualTo("upload_id", up.upload_id)).to_arrow().num_rows == valid

    with psycopg.connect(migrated_database_url) as conn:
        workflow = conn.execute(
            "SELECT phase, snapshot_id FROM workflow_execution WHERE run_id = %s", (up.upload_id,)
        ).fetchall()
        jobs = conn.execute(
            "SELECT stage, status, rows_in, rows_out FROM job_metrics WHERE run_id = %s ORDER BY stage",
            (up.upload_id,),
        ).fetchall()
        checks = conn.execute(
            "SELECT check_name, column_name, passed_count, failed_count FROM data_quality_metrics WHERE run_id = %s",
            (up.upload_id,),
        ).fetchall()
        lineage = conn.execute(
            "SELECT snapshot_id, rows_written FROM table_lineage WHERE run_id = %s", (up.upload_id,)
        ).fetchall()
    assert workflow == [("Succeeded", status["snapshotId"])]
    assert jobs == [("ingest", "succeeded", valid + rejected, valid), ("transform", "succeeded", valid, valid)]
    assert ("row_count", "", valid, rejected) in checks
    assert all(p + f == valid + rejected for name, _, p, f in checks if name == "not_null")
    assert len(checks) == len({(name, column) for name, column, _, _ in checks})
    assert lineage == [(status["snapshotId"], valid)]

    rows = outbox_rows(migrated_database_url, up.upload_id)
    assert [r["topic"] for r in rows] == EVENTS
    events = events_for(os.environ["KAFKA_BOOTSTRAP_SERVERS"], up.upload_id, EVENTS)
    assert {(e["topic"], e["id"]) for e in events} == {(r["topic"], r["event_id"]) for r in rows}
    print(
        f"PostgreSQL down {outage['down_seconds']:.1f}s, start {outage['start_seconds']:.1f}s; "
        f"run ended after attempt {failed_attempt.get('attempts')} had failed; outbox drained {drain_seconds:.1f}s "
        "after Succeeded"
    )
