"""The Iceberg REST catalog stopped during a bronze commit, then started.

The operator holds the run at `transform.before-commit` (lakehouse_operator.faults) while the test stops the
catalog, so the commit itself meets the outage. The attempt fails, the transform stage retries it with backoff,
and the catalog is back well within the retry window (OperatorSettings.retry_window), so the run succeeds
with its rows once instead of failing with RetriesExhausted. Meanwhile the API answers the reads that need the
catalog with 503 problem+json, and serves them again once it is back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client
from pyiceberg.catalog import Catalog

from lakehouse.bronze.writer import RUN_ID_PROPERTY, ensure_table, find_run_snapshot
from lakehouse.contracts.registry import ContractRegistry
from lakehouse.devtools.sample_data import orders
from lakehouse.events import BRONZE_LAYER_COMPLETE, FILE_UPLOADED, RAW_DATA_READY
from tests.utils.api_checks import problem
from tests.utils.api_process import running_api
from tests.utils.exactly_once import assert_events_once, assert_metadata_once, assert_objects_once, bronze_rows
from tests.utils.operator_process import OperatorProcess
from tests.utils.outbox import wait_until_drained
from tests.utils.pauses import down_at_pause_point, pause_env, release
from tests.utils.runs import create_run, run_body, upload, wait_for_phase
from tests.utils.stack import stack_env

pytestmark = pytest.mark.integration
TARGET = {"namespace": "bronze_faults", "table": "orders"}
TABLE = f"{TARGET['namespace']}.{TARGET['table']}"
EVENTS = [FILE_UPLOADED, RAW_DATA_READY, BRONZE_LAYER_COMPLETE]
POINT = "transform.before-commit"
CATALOG_READS = ["/api/v1/tables", f"/api/v1/tables/{TARGET['namespace']}/{TARGET['table']}"]
CATALOG_READS.append(CATALOG_READS[1] + "/rows?limit=5")


def test_catalog_stopped_during_a_commit_the_run_recovers_and_the_api_answers_503(
    run_namespace: str,
    custom_objects: client.CustomObjectsApi,
    s3: Any,
    catalog: Catalog,
    migrated_database_url: str,
    tmp_path: Path,
) -> None:
    sample = orders(300, invalid_every=15, seed=3)
    up = upload(s3, sample.csv_bytes(), "orders", "csv")
    ensure_table(catalog, ContractRegistry.default().get("orders"), TABLE)  # the reads below find it on any stack
    env = {"DATABASE_URL": migrated_database_url, **pause_env(tmp_path, POINT)}
    operator = OperatorProcess(run_namespace, tmp_path / "operator.log", env, metrics=True).start()
    api_namespace = stack_env("KUBECONFIG", "ICEBERG_CATALOG_URI", "LAKEHOUSE_NAMESPACE")["LAKEHOUSE_NAMESPACE"]
    try:
        with (
            running_api(api_namespace, tmp_path / "api.log", {"LAKEHOUSE_BACKEND_TIMEOUT": "2"}) as api,
            httpx.Client(base_url=api.url, headers=api.headers, timeout=60) as http,
        ):
            before = [http.get(path) for path in CATALOG_READS]  # the API's catalog client is connected
            create_run(custom_objects, run_namespace, run_body(up, "orders", target=TARGET))
            with down_at_pause_point(
                "iceberg-rest", tmp_path, POINT, custom_objects, run_namespace, up.upload_id
            ) as outage:
                during = [http.get(path) for path in CATALOG_READS]
                datasets = http.get("/api/v1/datasets")
                ready = http.get("/readyz")
            run = wait_for_phase(custom_objects, run_namespace, up.upload_id, {"Succeeded", "Failed"}, timeout=180)
            after = [http.get(path) for path in CATALOG_READS]
        catalog_retries = operator.metric(
            "lakehouse_iceberg_commit_retries_total", {"dataset": "orders", "cause": "catalog-unavailable"}
        )
        wait_until_drained(migrated_database_url, timeout=120)
    finally:
        release(tmp_path, POINT)
        operator.stop()

    assert [r.status_code for r in before] == [200, 200, 200], [r.text for r in before]
    for response in during:
        body = problem(response, 503)
        assert body["type"].endswith("/backend-unavailable") and "retry" in body["detail"], body
    assert datasets.status_code == 200  # what does not need the catalog is still served
    # Uploads do not need the catalog, so the pod stays ready; the check says what is down.
    assert ready.status_code == 200 and ready.json()["checks"]["catalog"]["ok"] is False, ready.text
    assert [r.status_code for r in after] == [200, 200, 200], [r.text for r in after]

    status = run["status"]
    assert status["phase"] == "Succeeded", status
    assert outage.failed_attempt["phase"] == "Transforming", outage.failed_attempt
    assert catalog_retries >= 1
    valid, rejected = len(sample.valid), len(sample.rejected)
    assert status["counts"]["written"] == valid
    assert bronze_rows(catalog, TABLE, up.upload_id) == (valid, valid)
    table = catalog.load_table(TABLE)
    assert find_run_snapshot(table, up.upload_id) == status["snapshotId"]
    committed = [s for s in table.snapshots() if s.summary and RUN_ID_PROPERTY in s.summary.additional_properties]
    assert sum(s.summary.additional_properties[RUN_ID_PROPERTY] == up.upload_id for s in committed if s.summary) == 1
    assert_objects_once(s3, status, up.upload_id)
    assert_metadata_once(migrated_database_url, up.upload_id, status, valid, rejected)
    assert_events_once(migrated_database_url, up.upload_id, EVENTS)
    print(
        f"catalog down {outage.timings['down_seconds']:.1f}s (start {outage.timings['start_seconds']:.1f}s); "
        f"{catalog_retries:.0f} commit attempt(s) failed for want of it; the run {status['phase']}"
    )
