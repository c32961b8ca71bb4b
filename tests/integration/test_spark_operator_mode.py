"""The Spark engine's operator mode against the real kube-apiserver, playing the Spark Operator's part.

No Spark Operator runs here: the test creates real IngestionRuns (in a namespace no lakehouse operator
watches, so they stay untouched), lets the engine create their SparkApplications, then moves each
application's status the way the Spark Operator would and checks what the engine makes of it.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pytest
import yaml
from kubernetes import client
from lakehouse_operator.context import run_context
from lakehouse_operator.engines.base import RunContext, RunRejectedError, StillRunning, TransformOutcome
from lakehouse_operator.engines.spark import SparkSettings
from lakehouse_operator.engines.spark_application import GROUP, PLURAL, RUN_UID_LABEL, VERSION, application_name
from lakehouse_operator.engines.spark_operator import SparkApplicationEngine
from pyiceberg.catalog import Catalog
from pyiceberg.schema import Schema
from pyiceberg.types import LongType, NestedField

from lakehouse.bronze.writer import RUN_ID_PROPERTY
from lakehouse.contracts.registry import ContractRegistry
from lakehouse.settings import PlatformSettings
from tests.utils.runs import Upload, create_run, get_run, new_upload_id, run_body
from tests.utils.shared import SPARK_OPERATOR_CRD
from tests.utils.stack import stack_env

pytestmark = pytest.mark.integration
CRD = SPARK_OPERATOR_CRD
IMAGE = "registry.example/lakehouse-spark:it"


@pytest.fixture(scope="module")
def spark_crd() -> None:
    """The Spark Operator's CRD, applied as its Helm chart would (server-side, idempotent)."""
    env = stack_env("KUBECONFIG", "KUBECTL")
    kubectl = [env["KUBECTL"], "--kubeconfig", env["KUBECONFIG"]]
    subprocess.run([*kubectl, "apply", "--server-side", "-f", str(CRD)], check=True, capture_output=True)
    subprocess.run(
        [
            *kubectl,
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/sparkapplications.sparkoperator.k8s.io",
        ],
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def engine(spark_crd: None, kube_api: client.ApiClient, catalog: Catalog) -> SparkApplicationEngine:
    stack_env("ICEBERG_CATALOG_URI", "ICEBERG_WAREHOUSE", "S3_ENDPOINT_URL", "AWS_SECRET_ACCESS_KEY", "DATABASE_URL")
    settings = SparkSettings(
        LAKEHOUSE_SPARK_MODE="operator", LAKEHOUSE_SPARK_IMAGE=IMAGE, LAKEHOUSE_SPARK_POLL_SECONDS=1
    )
    return SparkApplicationEngine(
        settings, PlatformSettings(), lambda: catalog, lambda: client.CustomObjectsApi(kube_api)
    )


@pytest.fixture
def new_run(custom_objects: client.CustomObjectsApi, run_namespace: str) -> Callable[..., RunContext]:
    """A real IngestionRun (the owner) and its RunContext, as the operator's handlers build it."""

    def make(target_table: str = "bronze_it.spark_operator_mode") -> RunContext:
        upload_id = new_upload_id("spark")
        up = Upload(upload_id, f"s3://uploads/orders/2025-07-01/{upload_id}/data.csv", 100, "0" * 64, "csv")
        namespace, table = target_table.split(".")
        manifest = run_body(
            up, "orders", engines={"transform": "spark"}, target={"namespace": namespace, "table": table}
        )
        create_run(custom_objects, run_namespace, manifest)
        return run_context(get_run(custom_objects, run_namespace, upload_id), ContractRegistry.default())

    return make


def application(api: client.CustomObjectsApi, run: RunContext) -> dict[str, Any]:
    return api.get_namespaced_custom_object(GROUP, VERSION, run.namespace, PLURAL, application_name(run.name))


def set_state(api: client.CustomObjectsApi, run: RunContext, state: str, error: str | None = None) -> None:
    """What the Spark Operator does: write status.applicationState through the status subresource."""
    app_state: dict[str, Any] = {"state": state}
    if error:
        app_state["errorMessage"] = error
    api.patch_namespaced_custom_object_status(
        GROUP, VERSION, run.namespace, PLURAL, application_name(run.name),
        {"status": {"applicationState": app_state, "submissionAttempts": 1,
                    "driverInfo": {"podName": f"{application_name(run.name)}-driver"}}},
    )  # fmt: skip


def test_creates_one_owned_application_and_follows_it_to_completion(
    engine: SparkApplicationEngine, new_run: Callable[..., RunContext], custom_objects: client.CustomObjectsApi,
    catalog: Catalog,
) -> None:  # fmt: skip
    table_name = f"bronze_it.spark_op_{uuid.uuid4().hex[:8]}"
    run = new_run(table_name)
    raw_uri = f"s3://raw/orders/2025-07-01/{run.upload_id}.parquet"

    first = engine.transform(run, raw_uri)
    second = engine.transform(run, raw_uri)  # the handler again: finds it, creates nothing

    assert isinstance(first, StillRunning) and "submitted" in first.message
    assert isinstance(second, StillRunning) and "NEW" in second.message
    apps = custom_objects.list_namespaced_custom_object(
        GROUP, VERSION, run.namespace, PLURAL, label_selector=f"{RUN_UID_LABEL}={run.owner['uid']}"
    )["items"]
    assert len(apps) == 1
    app = apps[0]
    assert app["metadata"]["ownerReferences"] == [run.owner]
    spec = app["spec"]
    assert (spec["type"], spec["mode"], spec["image"]) == ("Python", "cluster", IMAGE)
    assert spec["mainApplicationFile"] == "local:///opt/lakehouse/spark/bronze_transform.py"
    assert spec["arguments"] == engine.arguments(run, raw_uri)
    assert spec["sparkConf"]["spark.sql.catalog.lakehouse.uri"] == os.environ["ICEBERG_CATALOG_URI"]
    text = yaml.safe_dump(app)
    for secret in (os.environ["AWS_SECRET_ACCESS_KEY"], os.environ["AWS_ACCESS_KEY_ID"], os.environ["DATABASE_URL"]):
        assert secret not in text

    set_state(custom_objects, run, "RUNNING")
    running = engine.transform(run, raw_uri)
    assert isinstance(running, StillRunning) and "RUNNING" in running.message

    # The job's commit, as its driver would have made it: a snapshot carrying the run id.
    table = catalog.create_table(table_name, Schema(NestedField(1, "order_id", LongType(), required=False)))
    try:
        table.append(
            pa.table({"order_id": pa.array([1, 2, 3], pa.int64())}), snapshot_properties={RUN_ID_PROPERTY: run.name}
        )
        set_state(custom_objects, run, "COMPLETED")

        outcome = engine.transform(run, raw_uri)

        assert isinstance(outcome, TransformOutcome)
        assert (outcome.table, outcome.rows_written) == (table_name, 3)
        assert outcome.snapshot_id == catalog.load_table(table_name).current_snapshot().snapshot_id  # type: ignore[union-attr]
    finally:
        catalog.drop_table(table_name)

    # Deleting the run deletes its application: the ownerReference is real to the garbage collector.
    custom_objects.delete_namespaced_custom_object(
        "lakehouse.dev", "v1alpha1", run.namespace, "ingestionruns", run.name
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        remaining = custom_objects.list_namespaced_custom_object(
            GROUP, VERSION, run.namespace, PLURAL, label_selector=f"{RUN_UID_LABEL}={run.owner['uid']}"
        )["items"]
        if not remaining:
            break
        time.sleep(0.5)
    assert not remaining, "the SparkApplication outlived its IngestionRun"


@pytest.mark.parametrize(
    ("state", "error"),
    [
        ("FAILED", "driver container failed with ExitCode: 2, Reason: Error"),
        ("SUBMISSION_FAILED", "failed to run spark-submit: image pull back-off"),
    ],
)
def test_failed_application_rejects_the_run_with_the_drivers_message(
    engine: SparkApplicationEngine, new_run: Callable[..., RunContext], custom_objects: client.CustomObjectsApi,
    state: str, error: str,
) -> None:  # fmt: skip
    run = new_run()
    assert isinstance(engine.transform(run, "s3://raw/x.parquet"), StillRunning)
    set_state(custom_objects, run, state, error)

    with pytest.raises(RunRejectedError) as rejected:
        engine.transform(run, "s3://raw/x.parquet")

    assert rejected.value.reason == "SparkApplicationFailed"
    assert state in rejected.value.message and error in rejected.value.message


def test_an_application_that_never_finishes_times_out_and_is_deleted(
    engine: SparkApplicationEngine, new_run: Callable[..., RunContext], custom_objects: client.CustomObjectsApi,
    kube_api: client.ApiClient, catalog: Catalog,
) -> None:  # fmt: skip
    impatient = SparkApplicationEngine(
        SparkSettings(LAKEHOUSE_SPARK_MODE="operator", LAKEHOUSE_SPARK_IMAGE=IMAGE, LAKEHOUSE_SPARK_TIMEOUT_SECONDS=1),
        PlatformSettings(), lambda: catalog, lambda: client.CustomObjectsApi(kube_api),
    )  # fmt: skip
    run = new_run()
    assert isinstance(impatient.transform(run, "s3://raw/x.parquet"), StillRunning)
    set_state(custom_objects, run, "RUNNING")
    time.sleep(2.2)  # creationTimestamp has whole-second precision

    with pytest.raises(RunRejectedError) as rejected:
        impatient.transform(run, "s3://raw/x.parquet")

    assert rejected.value.reason == "SparkTimedOut" and "RUNNING" in rejected.value.message
    with pytest.raises(client.ApiException) as gone:
        application(custom_objects, run)
    assert gone.value.status == 404


def test_server_accepts_the_application_with_strict_field_validation(
    engine: SparkApplicationEngine, new_run: Callable[..., RunContext], custom_objects: client.CustomObjectsApi
) -> None:
    """A dry run with fieldValidation=Strict: the API server prunes nothing and rejects nothing."""
    run = new_run()
    manifest = engine.application(run, "s3://raw/x.parquet")
    created = custom_objects.create_namespaced_custom_object(
        GROUP, VERSION, run.namespace, PLURAL, manifest, dry_run="All", field_validation="Strict"
    )
    assert created["spec"] == manifest["spec"]
    with pytest.raises(client.ApiException) as missing:
        application(custom_objects, run)  # a dry run persists nothing
    assert missing.value.status == 404
