"""S3 (SeaweedFS) stopped under a run, once while it ingests and once while it commits to bronze.

The outage has to land in the step, not before or after it, so the operator holds the run at a pause point
(lakehouse_operator.faults) while the test stops S3, then lets it go: the attempt fails for want of S3, the
test starts S3 again, and the retried attempt runs through. Raw and quarantine keys are fixed per run and the
bronze append looks for the run id first, so the retry writes nothing twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from pyiceberg.catalog import Catalog

from lakehouse.devtools.sample_data import orders
from lakehouse.events import BRONZE_LAYER_COMPLETE, FILE_UPLOADED, RAW_DATA_READY
from tests.utils.exactly_once import assert_events_once, assert_metadata_once, assert_objects_once, bronze_rows
from tests.utils.operator_process import OperatorProcess
from tests.utils.outbox import wait_until_drained
from tests.utils.pauses import down_at_pause_point, pause_env, release
from tests.utils.runs import create_run, run_body, upload, wait_for_phase

pytestmark = pytest.mark.integration
TARGET = {"namespace": "bronze_faults", "table": "orders"}
EVENTS = [FILE_UPLOADED, RAW_DATA_READY, BRONZE_LAYER_COMPLETE]
# Where the run is held while S3 goes down, and the phase it is in there.
POINTS = {"ingest.before-engine": "Ingesting", "transform.before-commit": "Transforming"}


@pytest.mark.parametrize("point", POINTS)
def test_s3_stopped_mid_step_then_started_ends_succeeded_with_everything_once(
    point: str,
    run_namespace: str,
    custom_objects: client.CustomObjectsApi,
    s3: Any,
    catalog: Catalog,
    migrated_database_url: str,
    tmp_path: Path,
) -> None:
    sample = orders(400, invalid_every=20, seed=len(point))
    up = upload(s3, sample.csv_bytes(), "orders", "csv")
    env = {"DATABASE_URL": migrated_database_url, **pause_env(tmp_path, point)}
    operator = OperatorProcess(run_namespace, tmp_path / "operator.log", env, metrics=True).start()
    try:
        create_run(custom_objects, run_namespace, run_body(up, "orders", target=TARGET))
        with down_at_pause_point("s3", tmp_path, point, custom_objects, run_namespace, up.upload_id) as outage:
            pass  # S3 starts again once an attempt has failed for want of it
        run = wait_for_phase(custom_objects, run_namespace, up.upload_id, {"Succeeded", "Failed"}, timeout=180)
        storage_retries = operator.metric(
            "lakehouse_iceberg_commit_retries_total", {"dataset": "orders", "cause": "storage-unavailable"}
        )
        wait_until_drained(migrated_database_url, timeout=120)
    finally:
        release(tmp_path, point)
        operator.stop()

    status = run["status"]
    assert status["phase"] == "Succeeded", status
    assert outage.failed_attempt["phase"] == POINTS[point], outage.failed_attempt
    valid, rejected = len(sample.valid), len(sample.rejected)
    assert status["counts"] == {"input": valid + rejected, "valid": valid, "rejected": rejected, "written": valid}
    assert bronze_rows(catalog, f"{TARGET['namespace']}.{TARGET['table']}", up.upload_id) == (valid, valid)
    assert_objects_once(s3, status, up.upload_id)
    assert_metadata_once(migrated_database_url, up.upload_id, status, valid, rejected)
    assert_events_once(migrated_database_url, up.upload_id, EVENTS)
    # The commit's failures are counted as S3's; an ingest never reaches the commit while S3 is down.
    assert (storage_retries >= 1) == (point == "transform.before-commit"), storage_retries
    print(
        f"{point}: S3 down {outage.timings['down_seconds']:.1f}s (start {outage.timings['start_seconds']:.1f}s); "
        f"attempt {outage.failed_attempt['attempts']} failed, run {status['phase']}"
    )
