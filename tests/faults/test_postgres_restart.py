"""PostgreSQL restarted mid-run: the run's metadata rows are still written, each exactly once.

A phase change writes its rows and its event in one transaction (operator/lakehouse_operator/records.py),
so a restart either loses the whole change, which the retried attempt writes again, or none of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from pyiceberg.catalog import Catalog

from lakehouse.devtools.sample_data import orders
from lakehouse.events import BRONZE_LAYER_COMPLETE, FILE_UPLOADED, RAW_DATA_READY
from tests.utils.exactly_once import assert_events_once, assert_metadata_once, bronze_rows
from tests.utils.operator_process import OperatorProcess
from tests.utils.outbox import wait_until_drained
from tests.utils.runs import TERMINAL, create_run, retrying, run_body, upload, wait_for_phase
from tests.utils.servers import stopped
from tests.utils.waiting import wait_until

pytestmark = pytest.mark.integration
TARGET = {"namespace": "bronze_faults", "table": "orders"}
EVENTS = [FILE_UPLOADED, RAW_DATA_READY, BRONZE_LAYER_COMPLETE]
IN_FLIGHT = {"Ingesting", "RawReady", "Transforming"}


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
    assert bronze_rows(catalog, f"{TARGET['namespace']}.{TARGET['table']}", up.upload_id) == (valid, valid)
    assert_metadata_once(migrated_database_url, up.upload_id, status, valid, rejected)
    assert_events_once(migrated_database_url, up.upload_id, EVENTS)
    print(
        f"PostgreSQL down {outage['down_seconds']:.1f}s, start {outage['start_seconds']:.1f}s; "
        f"run ended after attempt {failed_attempt.get('attempts')} had failed; outbox drained {drain_seconds:.1f}s "
        "after Succeeded"
    )
