"""Finished runs are deleted once they are older than the TTL; their records stay.

The operator runs with LAKEHOUSE_FINISHED_RUN_TTL_SECONDS=4: a run that succeeded and one that failed
disappear from the API server, not before their TTL, while their PostgreSQL rows and bronze rows stay.
(Which runs expire, in-flight ones never, is tests/unit/operator/test_run_cleanup.py's.)
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import EqualTo

from lakehouse.devtools.sample_data import orders
from lakehouse.k8s.ingestionrun.status import parse_time
from tests.utils.operator_process import OperatorProcess
from tests.utils.runs import create_run, get_run, run_body, upload, wait_for_phase
from tests.utils.waiting import wait_until

pytestmark = pytest.mark.integration
TTL_SECONDS = 4
TARGET = {"namespace": "bronze_cleanup", "table": "orders"}


def gone(custom_objects: client.CustomObjectsApi, namespace: str, name: str) -> bool:
    try:
        get_run(custom_objects, namespace, name)
    except ApiException as error:
        if error.status == 404:
            return True
        raise
    return False


def test_finished_runs_are_deleted_after_the_ttl_and_their_records_stay(
    run_namespace: str,
    custom_objects: client.CustomObjectsApi,
    s3: Any,
    catalog: Catalog,
    migrated_database_url: str,
    tmp_path: Path,
) -> None:
    sample = orders(50, seed=11)
    good = upload(s3, sample.csv_bytes(), "orders", "csv")
    bad = upload(s3, b"not,the,header\n1,2,3\n", "orders", "csv")
    env = {"DATABASE_URL": migrated_database_url, "LAKEHOUSE_FINISHED_RUN_TTL_SECONDS": str(TTL_SECONDS)}
    operator = OperatorProcess(run_namespace, tmp_path / "operator.log", env).start()
    try:
        for up in (good, bad):
            create_run(custom_objects, run_namespace, run_body(up, "orders", target=TARGET))
        succeeded = wait_for_phase(custom_objects, run_namespace, good.upload_id, {"Succeeded", "Failed"}, timeout=120)
        failed = wait_for_phase(custom_objects, run_namespace, bad.upload_id, {"Succeeded", "Failed"}, timeout=120)
        assert (succeeded["status"]["phase"], failed["status"]["phase"]) == ("Succeeded", "Failed")
        for run in (succeeded, failed):
            wait_until(
                lambda run=run: gone(custom_objects, run_namespace, run["metadata"]["name"]),
                f"{run['metadata']['name']} deleted after its TTL",
                timeout=60,
            )
            deleted_at = dt.datetime.now(dt.UTC)
            finished = parse_time(run["status"]["completionTime"])
            assert deleted_at - finished >= dt.timedelta(seconds=TTL_SECONDS)  # not before: same clock
    finally:
        operator.stop()

    with psycopg.connect(migrated_database_url) as conn:
        phases = dict(
            conn.execute(
                "SELECT run_id, phase FROM workflow_execution WHERE run_id = ANY(%s)",
                ([good.upload_id, bad.upload_id],),
            ).fetchall()
        )
    assert phases == {good.upload_id: "Succeeded", bad.upload_id: "Failed"}
    table = catalog.load_table(f"{TARGET['namespace']}.{TARGET['table']}")
    assert table.scan(row_filter=EqualTo("upload_id", good.upload_id)).to_arrow().num_rows == len(sample.valid)
