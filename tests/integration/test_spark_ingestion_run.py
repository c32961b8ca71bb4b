"""An IngestionRun whose transform runs as a local spark-submit child of the operator."""

from __future__ import annotations

import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import EqualTo

from lakehouse.devtools.sample_data import SampleOrders, orders
from tests.utils.operator_process import OperatorProcess
from tests.utils.runs import Upload, create_run, get_run, run_body, upload, wait_for_phase

pytestmark = pytest.mark.integration
OPERATOR_ENV = {
    "LAKEHOUSE_SPARK_ENABLED": "true",
    "LAKEHOUSE_SPARK_MODE": "local",
    "LAKEHOUSE_SPARK_MASTER": "local[2]",
    # The module's own: the test below watches the process of its run there.
    "LAKEHOUSE_SPARK_WORK_DIR": str(Path(tempfile.gettempdir()) / f"lakehouse-spark-it-{uuid.uuid4().hex[:8]}"),
}


def start_spark_run(
    custom_objects: client.CustomObjectsApi, namespace: str, s3: Any, sample: SampleOrders
) -> tuple[Upload, str]:
    """A run of the sample with the Spark engine, into a bronze table of its own (returned)."""
    up = upload(s3, sample.csv_bytes(), "orders", "csv")
    target = {"namespace": "bronze_it", "table": f"orders_spark_{up.upload_id[-8:]}"}
    create_run(custom_objects, namespace, run_body(up, "orders", engines={"transform": "spark"}, target=target))
    return up, f"{target['namespace']}.{target['table']}"


def test_run_with_the_spark_engine_in_local_mode_succeeds(
    operator: OperatorProcess,
    run_namespace: str,
    custom_objects: client.CustomObjectsApi,
    s3: Any,
    catalog: Catalog,
) -> None:
    sample = orders(400, invalid_every=20, seed=21)
    up, table_name = start_spark_run(custom_objects, run_namespace, s3, sample)

    run = wait_for_phase(custom_objects, run_namespace, up.upload_id, {"Succeeded", "Failed"}, timeout=400)

    status = run["status"]
    assert status["phase"] == "Succeeded", status
    assert status["engines"] == {"ingest": "builtin", "transform": "spark"}
    assert status["counts"] == {"input": 400, "valid": 380, "rejected": 20, "written": 380}
    table = catalog.load_table(table_name)
    rows = table.scan(row_filter=EqualTo("upload_id", up.upload_id)).to_arrow().to_pylist()
    assert {r["order_id"]: (r["customer_id"], r["amount"], r["order_date"]) for r in rows} == sample.valid
    assert table.snapshot_by_id(status["snapshotId"]).summary.additional_properties["lakehouse.run-id"] == up.upload_id
    catalog.drop_table(table_name)


def test_an_operator_killed_during_spark_submit_follows_the_same_process_after_its_restart(
    operator: OperatorProcess,
    run_namespace: str,
    custom_objects: client.CustomObjectsApi,
    s3: Any,
    catalog: Catalog,
) -> None:
    up, table_name = start_spark_run(custom_objects, run_namespace, s3, orders(200, invalid_every=25, seed=22))
    run_directory = (
        Path(OPERATOR_ENV["LAKEHOUSE_SPARK_WORK_DIR"])
        / get_run(custom_objects, run_namespace, up.upload_id)["metadata"]["uid"]
    )
    pid_file = run_directory / "pid"
    deadline = time.monotonic() + 120
    while not (pid_file.exists() and pid_file.read_text().strip()):
        assert time.monotonic() < deadline, "spark-submit never started"
        time.sleep(0.2)
    first = pid_file.read_text().strip()

    operator.kill()  # SIGKILL: no handler finishes, the spark-submit of the run lives on
    operator.start()
    pids = {first}
    while get_run(custom_objects, run_namespace, up.upload_id).get("status", {}).get("phase") == "Transforming":
        if pid_file.exists() and pid_file.read_text().strip():
            pids.add(pid_file.read_text().strip())
        assert time.monotonic() < deadline + 400, "the run never left Transforming"
        time.sleep(0.2)

    status = wait_for_phase(custom_objects, run_namespace, up.upload_id, {"Succeeded", "Failed"}, timeout=30)["status"]
    assert status["phase"] == "Succeeded", status
    assert pids == {first}, "a second spark-submit was started for the run"
    assert status["counts"] == {"input": 200, "valid": 192, "rejected": 8, "written": 192}
    table = catalog.load_table(table_name)
    commits = [s for s in table.snapshots() if s.summary.additional_properties.get("lakehouse.run-id") == up.upload_id]
    assert len(commits) == 1
    assert table.scan(row_filter=EqualTo("upload_id", up.upload_id)).to_arrow().num_rows == 192
    assert not run_directory.exists()  # its output was read, then dropped
    catalog.drop_table(table_name)
