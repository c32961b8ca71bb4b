"""An IngestionRun whose transform runs as a local spark-submit child of the operator."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import EqualTo

from lakehouse.devtools.sample_data import orders
from tests.utils.operator_process import OperatorProcess
from tests.utils.runs import create_run, run_body, upload, wait_for_phase

pytestmark = pytest.mark.integration
OPERATOR_ENV = {
    "LAKEHOUSE_SPARK_ENABLED": "true",
    "LAKEHOUSE_SPARK_MODE": "local",
    "LAKEHOUSE_SPARK_MASTER": "local[2]",
}


def test_run_with_the_spark_engine_in_local_mode_succeeds(
    operator: OperatorProcess,
    run_namespace: str,
    custom_objects: client.CustomObjectsApi,
    s3: Any,
    catalog: Catalog,
) -> None:
    sample = orders(400, invalid_every=20, seed=21)
    up = upload(s3, sample.csv_bytes(), "orders", "csv")
    target = {"namespace": "bronze_it", "table": f"orders_spark_{up.upload_id[-8:]}"}
    create_run(custom_objects, run_namespace, run_body(up, "orders", engines={"transform": "spark"}, target=target))

    run = wait_for_phase(custom_objects, run_namespace, up.upload_id, {"Succeeded", "Failed"}, timeout=400)

    status = run["status"]
    assert status["phase"] == "Succeeded", status
    assert status["engines"] == {"ingest": "builtin", "transform": "spark"}
    assert status["counts"] == {"input": 400, "valid": 380, "rejected": 20, "written": 380}
    table = catalog.load_table(f"{target['namespace']}.{target['table']}")
    rows = table.scan(row_filter=EqualTo("upload_id", up.upload_id)).to_arrow().to_pylist()
    assert {r["order_id"]: (r["customer_id"], r["amount"], r["order_date"]) for r in rows} == sample.valid
    assert table.snapshot_by_id(status["snapshotId"]).summary.additional_properties["lakehouse.run-id"] == up.upload_id
    catalog.drop_table(f"{target['namespace']}.{target['table']}")
