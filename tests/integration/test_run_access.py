"""What a run may touch, enforced twice against the real servers: the kube-apiserver refuses (422) a run
whose source is not its own upload or whose target is not a table name, by the CRD's pattern and CEL rules;
a real operator fails a run the CRD lets through but the install does not allow (another bucket, another
table) with SourceNotAllowed or TargetNotAllowed, at once, before anything is read or written."""

from __future__ import annotations

import copy
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

from lakehouse.devtools.sample_data import orders
from lakehouse.k8s.ingestionrun import KIND, PLURAL, VERSION
from lakehouse.k8s.ingestionrun.spec import SOURCE_OF_THE_RUN_MESSAGE, IngestionRunSpec
from lakehouse.storage.layout import IngestPaths, upload_location
from lakehouse.storage.s3 import S3Location
from tests.utils.operator_process import OperatorProcess
from tests.utils.runs import Upload, create_run, new_upload_id, run_body, upload, wait_for_phase
from tests.utils.waiting import wait_until

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
CRD_FILE = REPO_ROOT / "charts/lakehouse/crds/lakehouse.dev_ingestionruns.yaml"


# --- the CRD, in a real kube-apiserver ------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkout_crd(kube_api: client.ApiClient) -> Iterator[str]:
    """This checkout's CRD, installed under a group of the module's own: the same schema and CEL rules,
    judged by the real API server, without replacing the CRD the shared stack's operators run on."""
    group = f"t{uuid.uuid4().hex[:8]}.lakehouse.dev"
    crd = yaml.safe_load(CRD_FILE.read_text())
    crd["metadata"]["name"] = f"{PLURAL}.{group}"
    crd["spec"]["group"] = group
    crd["spec"]["names"].pop("shortNames", None)
    crd["spec"]["names"].pop("categories", None)
    extensions = client.ApiextensionsV1Api(kube_api)
    extensions.create_custom_resource_definition(crd)

    def established() -> bool:
        conditions = extensions.read_custom_resource_definition(crd["metadata"]["name"]).status.conditions or []
        return any(c.type == "Established" and c.status == "True" for c in conditions)

    try:
        wait_until(established, f"CRD {crd['metadata']['name']} established", timeout=60)
        yield group
    finally:
        extensions.delete_custom_resource_definition(crd["metadata"]["name"])


def own_upload_spec(dataset: str = "orders", upload_id: str = "u-1") -> dict[str, Any]:
    uri = upload_location("uploads", dataset, upload_id, "orders.csv", dt.date(2026, 12, 1)).uri
    return {"uploadId": upload_id, "dataset": dataset, "source": {"uri": uri, "format": "csv"}}


def with_changes(**changes: Any) -> dict[str, Any]:
    spec = copy.deepcopy(own_upload_spec())
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = spec
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return spec


# Specs and what the API server says about them (None: created); the Python spec type must agree.
SPECS = {
    "own upload": (own_upload_spec(), None),
    "own upload, a target table": (with_changes(target={"namespace": "bronze", "table": "orders"}), None),
    "own upload in another bucket": (with_changes(source__uri="s3://warehouse/orders/2026-12-01/u-1/o.csv"), None),
    "another dataset's upload": (
        with_changes(source__uri="s3://uploads/customers/2026-12-01/u-1/customers.csv"),
        SOURCE_OF_THE_RUN_MESSAGE,
    ),
    "another upload of the dataset": (
        with_changes(source__uri="s3://uploads/orders/2026-12-01/u-2/orders.csv"),
        SOURCE_OF_THE_RUN_MESSAGE,
    ),
    "a dot segment": (with_changes(source__uri="s3://uploads/orders/2026-12-01/u-1/../u-2/o.csv"), "spec.source.uri"),
    "any object of the bucket": (with_changes(source__uri="s3://uploads/orders.csv"), "spec.source.uri"),
    "not S3": (with_changes(source__uri="file:///etc/passwd"), "spec.source.uri"),
    "a target namespace that is no identifier": (with_changes(target={"namespace": "../bronze"}), "spec.target"),
    "a target table that is too long": (with_changes(target={"table": "t" * 64}), "spec.target.table"),
}


@pytest.mark.parametrize("case", SPECS)
def test_the_api_server_refuses_what_the_crd_can_tell(
    case: str, checkout_crd: str, run_namespace: str, custom_objects: client.CustomObjectsApi
) -> None:
    spec, refusal = SPECS[case]
    body = {"apiVersion": f"{checkout_crd}/{VERSION}", "kind": KIND, "metadata": {"name": new_upload_id()}}
    body["spec"] = spec
    try:
        custom_objects.create_namespaced_custom_object(checkout_crd, VERSION, run_namespace, PLURAL, body)
        answer = None
    except ApiException as error:
        assert error.status == 422, error.body
        answer = json.loads(error.body)["message"]
    if refusal is None:
        assert answer is None
    else:
        assert answer is not None and refusal in answer, answer
    try:
        IngestionRunSpec.model_validate(spec)
        python_accepts = True
    except ValueError:
        python_accepts = False
    assert python_accepts == (refusal is None)


# --- the operator, with the install's bucket and the contract's table ---------------------------------

SANDBOX_TABLE = {"namespace": "bronze_it", "table": f"access_{uuid.uuid4().hex[:8]}"}
FORBIDDEN_NAMESPACE = f"forbidden_{uuid.uuid4().hex[:8]}"


def finished(custom_objects: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any]:
    return wait_for_phase(custom_objects, namespace, name, {"Succeeded", "Failed"}, timeout=120)["status"]


def failure_reason(status: dict[str, Any]) -> tuple[str, str]:
    failed = next((c for c in status.get("conditions", []) if c["type"] == "Failed"), {})
    return status["phase"], failed.get("reason", "")


def nothing_written(s3: Any, up: Upload, status: dict[str, Any]) -> None:
    """No row counted, no raw or quarantine object, no retry: the run stopped at its validation."""
    assert status.get("counts") is None and status.get("rawPath") is None and status["attempts"] == 1
    day = dt.date.fromisoformat(status["processingDate"])
    paths = IngestPaths.for_run("orders", day, up.upload_id, "raw", "quarantine")
    for location in (paths.raw, paths.quarantine):
        assert s3.list_objects_v2(Bucket=location.bucket, Prefix=location.key)["KeyCount"] == 0


def event_reasons(kube_api: client.ApiClient, namespace: str, name: str) -> set[str]:
    events = client.CoreV1Api(kube_api).list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}")
    return {event.reason for event in events.items}


def test_a_run_of_its_own_upload_into_a_sandbox_table_succeeds(
    operator: OperatorProcess, run_namespace: str, custom_objects: client.CustomObjectsApi, s3: Any
) -> None:
    """The control: the same operator lets an allowed run through."""
    up = upload(s3, orders(5).csv_bytes(), "orders", "csv")
    create_run(custom_objects, run_namespace, run_body(up, "orders", target=SANDBOX_TABLE))
    status = finished(custom_objects, run_namespace, up.upload_id)
    assert (status["phase"], status["counts"]["written"]) == ("Succeeded", 5), status


def test_a_source_in_another_bucket_fails_at_once_and_nothing_is_read(
    operator: OperatorProcess,
    run_namespace: str,
    custom_objects: client.CustomObjectsApi,
    kube_api: client.ApiClient,
    s3: Any,
) -> None:
    """The object lies in another bucket the operator's credentials reach (raw/), at the uploads layout's key."""
    up = upload(s3, orders(5).csv_bytes(), "orders", "csv")
    elsewhere = S3Location("raw", S3Location.parse(up.uri).key)
    s3.copy_object(Bucket=elsewhere.bucket, Key=elsewhere.key, CopySource={"Bucket": "uploads", "Key": elsewhere.key})
    try:
        forged = Upload(up.upload_id, elsewhere.uri, up.size, up.sha256, up.fmt)
        create_run(custom_objects, run_namespace, run_body(forged, "orders", target=SANDBOX_TABLE))
        status = finished(custom_objects, run_namespace, up.upload_id)
    finally:
        s3.delete_object(Bucket=elsewhere.bucket, Key=elsewhere.key)
    assert failure_reason(status) == ("Failed", "SourceNotAllowed"), status
    assert "(bucket raw is not the uploads bucket): this run may read only s3://uploads/orders/" in status["message"]
    nothing_written(s3, up, status)
    assert "SourceNotAllowed" in wait_until(
        lambda: event_reasons(kube_api, run_namespace, up.upload_id) & {"SourceNotAllowed"}, "the Event", timeout=30
    )


@pytest.mark.parametrize(
    "target",
    [{"namespace": "bronze", "table": "customers"}, {"namespace": FORBIDDEN_NAMESPACE, "table": "orders"}],
    ids=["another dataset's table", "a namespace of no sandbox"],
)
def test_a_target_other_than_the_contracts_table_fails_at_once_and_nothing_is_written(
    target: dict[str, str],
    operator: OperatorProcess,
    run_namespace: str,
    custom_objects: client.CustomObjectsApi,
    catalog: Catalog,
    s3: Any,
) -> None:
    identifier = f"{target['namespace']}.{target['table']}"

    def snapshots() -> list[int] | None:
        try:
            return [s.snapshot_id for s in catalog.load_table(identifier).snapshots()]
        except (NoSuchTableError, NoSuchNamespaceError):
            return None

    before = snapshots()
    up = upload(s3, orders(5).csv_bytes(), "orders", "csv")
    create_run(custom_objects, run_namespace, run_body(up, "orders", target=target))
    status = finished(custom_objects, run_namespace, up.upload_id)
    assert failure_reason(status) == ("Failed", "TargetNotAllowed"), status
    assert f"writes only bronze.orders, not {identifier}" in status["message"]
    nothing_written(s3, up, status)
    assert snapshots() == before
    if target["namespace"] == FORBIDDEN_NAMESPACE:
        assert FORBIDDEN_NAMESPACE not in {ns[0] for ns in catalog.list_namespaces()}
