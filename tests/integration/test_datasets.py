"""Datasets added with kubectl, against the stack's kube-apiserver, catalog and S3, with no restart.

The module's operator and API start before any Dataset exists; a Dataset applied afterwards is validated, its
table created, and an upload for it lands in that table. An invalid Dataset is Invalid with the error while the
other dataset's uploads go on; the CRD's CEL rules refuse what they can at admission; a Dataset changed while a
run is under way does not change that run's contract.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client
from pyiceberg.catalog import Catalog

from lakehouse.devtools.dataset_crd import CRD_FILE, INGESTIONRUN_CRD_FILE
from lakehouse.k8s.dataset import GROUP, PLURAL, VERSION
from lakehouse.k8s.ingestionrun import PLURAL as RUNS
from tests.utils.api_checks import post_upload, problem, wait_for_upload
from tests.utils.api_process import ApiProcess, running_api
from tests.utils.cli import lakehouse
from tests.utils.kubectl import apply_crd, kubectl
from tests.utils.operator_process import OperatorProcess
from tests.utils.pauses import pause_env, release, wait_until_held
from tests.utils.waiting import wait_until

pytestmark = pytest.mark.integration

TABLE_NAMESPACE = "bronze_datasets"
PAUSE = "ingest.before-engine"
CSV = b"id,label,amount\n1,a,1.5\n2,b,2.5\n3,c,-1\n"


@pytest.fixture(scope="module")
def crds() -> None:
    """The Dataset CRD, and the IngestionRun CRD with the run's pinned contract (both additive)."""
    apply_crd(str(CRD_FILE), f"{PLURAL}.{GROUP}")
    apply_crd(str(INGESTIONRUN_CRD_FILE), f"{RUNS}.{GROUP}")


@pytest.fixture(scope="module")
def pause_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pauses")


@pytest.fixture(scope="module")
def platform(
    crds: None, run_namespace: str, pause_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[OperatorProcess, ApiProcess]]:
    logs = tmp_path_factory.mktemp("datasets")
    operator = OperatorProcess(run_namespace, logs / "operator.log", pause_env(pause_dir, PAUSE)).start()
    try:
        with running_api(run_namespace, logs / "api.log") as api:
            yield operator, api
    finally:
        operator.stop()


@pytest.fixture
def http(platform: tuple[OperatorProcess, ApiProcess]) -> Iterator[httpx.Client]:
    api = platform[1]
    with httpx.Client(base_url=api.url, headers=api.headers, timeout=30) as session:
        yield session


def dataset_manifest(dataset: str, namespace: str, version: int = 1, **spec: Any) -> dict[str, Any]:
    contract = {
        "version": version,
        "source_system": "integration-test",
        "columns": [
            {"name": "id", "type": "long", "required": True},
            {"name": "label", "type": "string"},
            {"name": "amount", "type": "double"},
        ],
        "rules": [{"name": "amount_not_negative", "column": "amount", "op": "ge", "value": 0}],
        "bronze": {"namespace": TABLE_NAMESPACE, "table": dataset, "sort_by": ["id"]},
        **spec,
    }
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Dataset",
        "metadata": {"name": dataset.replace("_", "-"), "namespace": namespace},
        "spec": contract,
    }


def apply(manifest: dict[str, Any], *flags: str, check: bool = True) -> str:
    result = kubectl("apply", *flags, "-f", "-", stdin=json.dumps(manifest), check=check)
    return result.stdout + result.stderr


def new_name() -> str:
    return f"ds_{uuid.uuid4().hex[:8]}"


def condition(api: client.CustomObjectsApi, namespace: str, name: str, type_: str) -> dict[str, Any] | None:
    body = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name.replace("_", "-"))
    status = body.get("status") or {}
    if status.get("observedGeneration") != body["metadata"]["generation"]:
        return None
    return next((c for c in status.get("conditions") or [] if c["type"] == type_), None)


def wait_for_condition(
    api: client.CustomObjectsApi, namespace: str, name: str, type_: str, value: str
) -> dict[str, Any]:
    found = wait_until(
        lambda: (c := condition(api, namespace, name, type_)) and c["status"] == value and c,
        f"Dataset {name} {type_}={value}",
        timeout=60,
    )
    return found


def table_rows(catalog: Catalog, name: str) -> list[dict[str, Any]]:
    rows = catalog.load_table(f"{TABLE_NAMESPACE}.{name}").scan().to_arrow().to_pylist()
    return sorted(rows, key=lambda row: row["id"])


def test_a_dataset_applied_with_kubectl_takes_uploads_with_no_restart(
    http: httpx.Client,
    platform: tuple[OperatorProcess, ApiProcess],
    custom_objects: client.CustomObjectsApi,
    run_namespace: str,
    catalog: Catalog,
    pause_dir: Path,
) -> None:
    name = new_name()
    # Unknown until applied: the API and the operator started before it existed.
    assert problem(post_upload(http, CSV, dataset=name, filename="a.csv"), 422)["type"].endswith("unknown-dataset")
    apply(dataset_manifest(name, run_namespace))
    ready = wait_for_condition(custom_objects, run_namespace, name, "Ready", "True")
    assert ready["reason"] == "TableReady"
    body = custom_objects.get_namespaced_custom_object(GROUP, VERSION, run_namespace, PLURAL, name.replace("_", "-"))
    table = catalog.load_table(f"{TABLE_NAMESPACE}.{name}")
    assert body["status"]["table"] == f"{TABLE_NAMESPACE}.{name}"
    assert (body["status"]["contractVersion"], body["status"]["schemaId"]) == (1, table.schema().schema_id)
    listed = kubectl("get", "datasets", "-n", run_namespace, name.replace("_", "-")).stdout
    assert "True" in listed and f"{TABLE_NAMESPACE}.{name}" in listed

    # The listing is cached for up to 2 s (an upload of an unknown name re-lists at once; this does not).
    wait_until(
        lambda: name in {d["name"] for d in http.get("/api/v1/datasets").raise_for_status().json()["data"]},
        "the API lists the new Dataset",
        timeout=10,
    )
    listing = lakehouse(platform[1], "datasets")
    assert listing.returncode == 0 and f"{TABLE_NAMESPACE}.{name}" in listing.stdout, listing.stderr
    response = post_upload(http, CSV, dataset=name, filename="a.csv")
    assert response.status_code == 202, response.text
    upload_id = response.json()["uploadId"]
    wait_until_held(pause_dir, PAUSE, [upload_id])
    # Changed while the run is under way: the run keeps the contract it was validated with.
    apply(dataset_manifest(name, run_namespace, version=2, rules=[]))
    wait_for_condition(custom_objects, run_namespace, name, "Ready", "True")
    release(pause_dir, PAUSE)
    upload = wait_for_upload(http, upload_id)
    assert upload["phase"] == "Succeeded", upload
    run = custom_objects.get_namespaced_custom_object(GROUP, VERSION, run_namespace, RUNS, upload_id)
    assert (run["status"]["datasetGeneration"], run["status"]["contract"]["version"]) == (1, 1)
    rows = table_rows(catalog, name)
    assert [(r["id"], r["label"], r["amount"], r["data_version"]) for r in rows] == [
        (1, "a", 1.5, f"{name}-v1"),
        (2, "b", 2.5, f"{name}-v1"),
    ]  # -1 broke version 1's rule (quarantined); version 2 has none

    # A run validated after the change uses version 2.
    response = post_upload(http, CSV, dataset=name, filename="b.csv")
    upload_id = response.json()["uploadId"]
    wait_until_held(pause_dir, PAUSE, [upload_id])
    release(pause_dir, PAUSE)
    assert wait_for_upload(http, upload_id)["phase"] == "Succeeded"
    run = custom_objects.get_namespaced_custom_object(GROUP, VERSION, run_namespace, RUNS, upload_id)
    assert (run["status"]["datasetGeneration"], run["status"]["contract"]["version"]) == (2, 2)
    assert sorted(r["id"] for r in table_rows(catalog, name) if r["data_version"] == f"{name}-v2") == [1, 2, 3]


def test_an_invalid_dataset_is_invalid_and_the_others_go_on(
    http: httpx.Client, custom_objects: client.CustomObjectsApi, run_namespace: str, catalog: Catalog, pause_dir: Path
) -> None:
    good, bad = new_name(), new_name()
    apply(dataset_manifest(good, run_namespace))
    # CEL cannot tell that 'many' is no double: the operator can.
    apply(dataset_manifest(bad, run_namespace, rules=[{"name": "r", "column": "amount", "op": "gt", "value": "many"}]))
    invalid = wait_for_condition(custom_objects, run_namespace, bad, "Invalid", "True")
    assert invalid["reason"] == "ContractInvalid"
    assert "rule 'r': 'many' is not a double" in invalid["message"]
    wait_for_condition(custom_objects, run_namespace, good, "Ready", "True")

    refused = problem(post_upload(http, CSV, dataset=bad, filename="a.csv"), 422)
    assert f"the Dataset '{bad}' is invalid" in refused["detail"]
    response = post_upload(http, CSV, dataset=good, filename="a.csv")
    upload_id = response.json()["uploadId"]
    wait_until_held(pause_dir, PAUSE, [upload_id])
    release(pause_dir, PAUSE)
    assert wait_for_upload(http, upload_id)["phase"] == "Succeeded"
    assert [r["id"] for r in table_rows(catalog, good)] == [1, 2]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"columns": [{"name": "id", "type": "long"}, {"name": "key", "type": "long", "rename": "id"}]},
            "two columns have the same name after renames",
        ),
        ({"columns": [{"name": "year", "type": "int"}]}, "the bronze layer adds the columns"),
        ({"rules": [{"name": "r", "column": "nothing", "op": "gt", "value": 0}]}, "a rule checks a column"),
        ({"bronze": {"namespace": "b", "table": "t", "sort_by": ["nothing"]}}, "a sort_by column is not a column"),
        # CEL leaves the type of the date column to the operator.
        ({"bronze": {"namespace": "b", "table": "t", "date_column": "label"}}, None),
    ],
)
def test_the_crd_refuses_what_cel_can_check(
    crds: None, run_namespace: str, change: dict[str, Any], message: str | None
) -> None:
    output = apply(dataset_manifest(new_name(), run_namespace, **change), "--dry-run=server", check=False)
    if message is None:
        assert "(server dry run)" in output, output
    else:
        assert message in output, output


def test_the_object_name_follows_spec_name(crds: None, run_namespace: str) -> None:
    manifest = dataset_manifest("line_items", run_namespace, name="other_items")
    output = apply(manifest, "--dry-run=server", check=False)
    assert "metadata.name must be spec.name with '-' for '_'" in output, output
    manifest = dataset_manifest("line_items", run_namespace, name="line_items")
    assert "(server dry run)" in apply(manifest, "--dry-run=server", check=False)


def test_an_operator_starts_beside_an_invalid_dataset_and_judges_each(
    crds: None, own_namespace: str, custom_objects: client.CustomObjectsApi, tmp_path: Path
) -> None:
    good, bad = new_name(), new_name()
    apply(dataset_manifest(good, own_namespace))
    apply(dataset_manifest(bad, own_namespace, columns=[{"name": "id", "type": "varchar"}], rules=[]))
    operator = OperatorProcess(own_namespace, tmp_path / "operator.log").start()  # healthy: start-up went through
    try:
        invalid = wait_for_condition(custom_objects, own_namespace, bad, "Invalid", "True")
        assert "unknown type 'varchar'" in invalid["message"]
        assert wait_for_condition(custom_objects, own_namespace, good, "Ready", "True")["reason"] == "TableReady"
    finally:
        operator.stop()
