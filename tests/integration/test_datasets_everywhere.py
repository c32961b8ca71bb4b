"""Dataset resources read beyond the operator's own stages: by the NiFi ingest engine (the operator sends NiFi the
run's contract) and by `lakehouse maintenance run` (it lists the namespace's Datasets as the operator does). Each
dataset here exists only as a Dataset resource, or its Dataset differs from its contract file, so a component that
read the files would fail the run or maintain the wrong table. Real kube-apiserver, NiFi, catalog, S3, PostgreSQL.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from typing import Any

import pytest
from kubernetes import client
from pyiceberg.catalog import Catalog

from lakehouse.contracts.model import DatasetContract
from lakehouse.contracts.registry import ContractRegistry
from lakehouse.devtools.dataset_crd import CRD_FILE, INGESTIONRUN_CRD_FILE
from lakehouse.devtools.dataset_manifest import dataset_manifest
from lakehouse.devtools.sample_data import orders
from lakehouse.devtools.sample_tables import append_runs
from lakehouse.k8s.dataset import GROUP, PLURAL
from lakehouse.k8s.ingestionrun import PLURAL as RUNS
from tests.utils.bronze_tables import scratch_table
from tests.utils.cli import CLI
from tests.utils.kubectl import apply_crd, kubectl
from tests.utils.operator_process import OperatorProcess
from tests.utils.runs import create_run, run_body, upload, wait_for_phase
from tests.utils.stack import stack_env

pytestmark = pytest.mark.integration
ORDERS = ContractRegistry.default().get("orders")
OPERATOR_ENV = {"LAKEHOUSE_NIFI_POLL_SECONDS": "1"}


@pytest.fixture(scope="module", autouse=True)
def crds() -> None:
    """Before the module's operator starts: the Dataset CRD, and the IngestionRun CRD with the pinned contract."""
    apply_crd(str(CRD_FILE), f"{PLURAL}.{GROUP}")
    apply_crd(str(INGESTIONRUN_CRD_FILE), f"{RUNS}.{GROUP}")


def orders_as(name: str, table: str, **changes: Any) -> DatasetContract:
    namespace, table_name = table.split(".")
    body = ORDERS.model_dump(mode="json") | {"name": name, **changes}
    body["bronze"] = body["bronze"] | {"namespace": namespace, "table": table_name}
    return DatasetContract.model_validate(body)


def apply(contract: DatasetContract, namespace: str) -> None:
    kubectl("apply", "-f", "-", stdin=json.dumps(dataset_manifest(contract, namespace)))


def test_nifi_ingests_a_dataset_that_only_a_dataset_resource_defines(
    operator: OperatorProcess, run_namespace: str, custom_objects: client.CustomObjectsApi, s3: Any, catalog: Catalog
) -> None:
    stack_env("NIFI_API_URL", "NIFI_LISTEN_URL")
    name = f"nifi_ds_{uuid.uuid4().hex[:8]}"
    table = f"bronze_it.{name}"
    # No contract file of this name exists, neither the operator's nor NiFi's (its contracts.dir).
    apply(orders_as(name, table, version=4), run_namespace)
    sample = orders(60, invalid_every=6)
    up = upload(s3, sample.csv_bytes(), name, "csv")

    create_run(custom_objects, run_namespace, run_body(up, name, engines={"ingest": "nifi"}))
    status = wait_for_phase(custom_objects, run_namespace, up.upload_id, {"Succeeded", "Failed"}, timeout=180)["status"]

    assert status["phase"] == "Succeeded", status
    assert status["engines"]["ingest"] == "nifi" and status["datasetGeneration"] == 1
    valid = 60 - len(sample.rejected)
    assert status["counts"] == {"input": 60, "valid": valid, "rejected": len(sample.rejected), "written": valid}
    assert catalog.load_table(table).scan().to_arrow().num_rows == valid


def test_maintenance_run_by_hand_maintains_the_table_the_namespaces_dataset_names(
    own_namespace: str, catalog: Catalog, migrated_database_url: str
) -> None:
    env = stack_env("KUBECONFIG", "ICEBERG_CATALOG_URI")
    table = scratch_table(catalog, ORDERS, "ds_maintained")
    append_runs(catalog, ORDERS, table, runs=6, rows=60)
    files = len(list(catalog.load_table(table).scan().plan_files()))
    # The namespace's Dataset `orders` moves the dataset to the scratch table; its contract file names bronze.orders.
    apply(orders_as("orders", table), own_namespace)

    done = subprocess.run(
        [CLI, "maintenance", "run", "orders", "--namespace", own_namespace],
        env={**os.environ, **env, "DATABASE_URL": migrated_database_url},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert f"{table}: compaction rewrote {files} files as 12" in done.stdout
    assert len(list(catalog.load_table(table).scan().plan_files())) == 12
