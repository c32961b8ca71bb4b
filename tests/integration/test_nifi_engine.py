"""The NiFi ingest engine end to end: a real NiFi runs the lakehouse-ingest flow for a real operator.

Each test checks what NiFi produced (objects in S3, events on Kafka, rows in the bronze table, the run's
status) against the built-in engine's output for the same file.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from lakehouse_operator.deploy_nifi_flow import deploy
from lakehouse_operator.engines.base import RunContext
from lakehouse_operator.engines.nifi import NiFiIngestEngine, NiFiSettings, result_location
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import EqualTo

from lakehouse.contracts.registry import ContractRegistry
from lakehouse.devtools.sample_data import orders
from lakehouse.nifi.client import NiFiClient
from lakehouse.nifi.deploy import RECHECK_SECONDS
from lakehouse.settings import PlatformSettings
from lakehouse.storage.s3 import S3Location, head_object, read_object, read_parquet
from tests.utils.kafka_events import events_for
from tests.utils.nifi_flow import (
    flow_groups,
    imports_since,
    queued_before,
    remove_flow,
    set_processor_state,
)
from tests.utils.operator_process import OperatorProcess
from tests.utils.runs import GROUP, PLURAL, VERSION, Upload, create_run, get_run, run_body, upload, wait_for_phase
from tests.utils.stack import stack_env

pytestmark = pytest.mark.integration
REPO_ROOT = Path(__file__).resolve().parents[2]
OPERATOR_ENV = {"LAKEHOUSE_NIFI_POLL_SECONDS": "1"}
STORE = "Store in S3"


@pytest.fixture(scope="module")
def nifi() -> NiFiClient:
    stack_env("NIFI_API_URL", "NIFI_LISTEN_URL")
    return NiFiClient(stack_env("NIFI_API_URL")["NIFI_API_URL"])


@pytest.fixture
def store_running_afterwards(nifi: NiFiClient) -> Iterator[None]:
    """Tests that stop the flow's last processor leave it running again, whatever happens."""
    yield
    if flow_groups(nifi):
        set_processor_state(nifi, STORE, "RUNNING")


def scratch_target() -> dict[str, str]:
    return {"namespace": "bronze_it", "table": f"nifi_{uuid.uuid4().hex[:8]}"}


def run_with(
    custom_objects: client.CustomObjectsApi, namespace: str, up: Upload, engine: str, target: dict[str, str]
) -> None:
    create_run(custom_objects, namespace, run_body(up, "orders", engines={"ingest": engine}, target=target))


def finished_status(custom_objects: client.CustomObjectsApi, namespace: str, up: Upload) -> dict[str, Any]:
    return wait_for_phase(custom_objects, namespace, up.upload_id, {"Succeeded", "Failed"}, timeout=180)["status"]


def warm_up(custom_objects: client.CustomObjectsApi, namespace: str, s3: Any) -> None:
    """One NiFi run to Succeeded: the flow is deployed, running, and checked by that operator."""
    up = upload(s3, orders(20).csv_bytes(), "orders", "csv")
    run_with(custom_objects, namespace, up, "nifi", scratch_target())
    assert finished_status(custom_objects, namespace, up)["phase"] == "Succeeded"


def test_nifi_writes_the_same_raw_and_quarantine_as_the_builtin_engine(
    operator: OperatorProcess,
    run_namespace: str,
    custom_objects: client.CustomObjectsApi,
    s3: Any,
    catalog: Catalog,
) -> None:
    sample = orders(300, invalid_every=7)
    data = sample.csv_bytes()
    by_nifi, by_builtin = upload(s3, data, "orders", "csv"), upload(s3, data, "orders", "csv")
    target = scratch_target()
    run_with(custom_objects, run_namespace, by_nifi, "nifi", target)
    run_with(custom_objects, run_namespace, by_builtin, "builtin", target)

    nifi_status = finished_status(custom_objects, run_namespace, by_nifi)
    builtin_status = finished_status(custom_objects, run_namespace, by_builtin)

    assert nifi_status["phase"] == "Succeeded", nifi_status
    assert nifi_status["engines"]["ingest"] == "nifi"
    assert (
        nifi_status["counts"]
        == builtin_status["counts"]
        == {
            "input": 300,
            "valid": 300 - len(sample.rejected),
            "rejected": len(sample.rejected),
            "written": 300 - len(sample.rejected),
        }
    )
    # Same rows, same types, same order in raw/.
    nifi_raw = read_parquet(s3, S3Location.parse(nifi_status["rawPath"]))
    builtin_raw = read_parquet(s3, S3Location.parse(builtin_status["rawPath"]))
    assert nifi_raw.schema == builtin_raw.schema
    assert nifi_raw.to_pylist() == builtin_raw.to_pylist()
    # Same rejected rows with the same reasons in quarantine/, each tagged with its own upload.
    nifi_bad = read_parquet(s3, S3Location.parse(nifi_status["quarantinePath"])).to_pylist()
    builtin_bad = read_parquet(s3, S3Location.parse(builtin_status["quarantinePath"])).to_pylist()
    assert {row.pop("_upload_id") for row in nifi_bad} == {by_nifi.upload_id}
    assert {row.pop("_upload_id") for row in builtin_bad} == {by_builtin.upload_id}
    assert nifi_bad == builtin_bad
    reasons = {row["_source_row"]: row["_reject_reason"] for row in nifi_bad}
    assert set(reasons) == set(sample.rejected)
    assert all(fragment in reasons[row] for row, fragment in sample.rejected.items())

    # The run's events name it, with NiFi's counts.
    bootstrap = stack_env("KAFKA_BOOTSTRAP_SERVERS")["KAFKA_BOOTSTRAP_SERVERS"]
    events = events_for(bootstrap, by_nifi.upload_id, ["file-uploaded", "raw-data-ready", "bronze-layer-complete"])
    by_type = {event["topic"]: event for event in events}
    assert by_type["file-uploaded"]["data"]["ingestEngine"] == "nifi"
    assert by_type["raw-data-ready"]["data"]["counts"] == {
        "input": 300,
        "valid": 300 - len(sample.rejected),
        "rejected": len(sample.rejected),
    }
    assert by_type["raw-data-ready"]["data"]["rawPath"] == nifi_status["rawPath"]

    # Both runs landed in bronze, each exactly once.
    table = catalog.load_table(f"{target['namespace']}.{target['table']}")
    for up in (by_nifi, by_builtin):
        rows = table.scan(row_filter=EqualTo("upload_id", up.upload_id)).to_arrow()
        assert rows.num_rows == 300 - len(sample.rejected)


def test_nifi_reports_a_file_it_cannot_ingest(
    operator: OperatorProcess, run_namespace: str, custom_objects: client.CustomObjectsApi, s3: Any
) -> None:
    up = upload(s3, b"order_id,amount\n1,2.50\n", "orders", "csv")
    run_with(custom_objects, run_namespace, up, "nifi", scratch_target())

    status = finished_status(custom_objects, run_namespace, up)

    assert status["phase"] == "Failed"
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "MissingColumns"
    assert "customer_id, date" in ready["message"] and ready["message"].startswith("NiFi: ")
    manifest = read_object(s3, S3Location("raw", f"_nifi/orders/{status['processingDate']}/{up.upload_id}.json"))
    assert b'"reason":"MissingColumns"' in manifest


def test_runs_started_together_deploy_the_flow_once(
    operator: OperatorProcess, run_namespace: str, custom_objects: client.CustomObjectsApi, s3: Any, nifi: NiFiClient
) -> None:
    remove_flow(nifi)
    assert flow_groups(nifi) == []
    started_ms = int(time.time() * 1000) - 1000
    sample = orders(40, invalid_every=5)
    uploads = [upload(s3, sample.csv_bytes(), "orders", "csv") for _ in range(6)]
    target = scratch_target()
    for up in uploads:
        run_with(custom_objects, run_namespace, up, "nifi", target)

    statuses = [finished_status(custom_objects, run_namespace, up) for up in uploads]

    assert [s["phase"] for s in statuses] == ["Succeeded"] * len(uploads), statuses
    assert all(s["counts"]["valid"] == 32 and s["counts"]["rejected"] == 8 for s in statuses)
    assert len(flow_groups(nifi)) == 1
    assert imports_since(nifi, started_ms) == 1


def test_a_nifi_restart_mid_run_loses_nothing(
    operator: OperatorProcess,
    run_namespace: str,
    custom_objects: client.CustomObjectsApi,
    s3: Any,
    catalog: Catalog,
    nifi: NiFiClient,
    store_running_afterwards: None,
) -> None:
    sample = orders(120, invalid_every=6)
    target = scratch_target()
    # The operator sets the flow's group RUNNING again when it reads NiFi, RECHECK_SECONDS after it last did:
    # let that happen with the warm-up's hand-over, so the Store stopped below stays stopped for the next one.
    time.sleep(RECHECK_SECONDS + 1)
    warm_up(custom_objects, run_namespace, s3)

    # Hold the run inside NiFi: its results wait in the queue before the last processor.
    set_processor_state(nifi, STORE, "STOPPED")
    in_flight = upload(s3, sample.csv_bytes(), "orders", "csv")
    run_with(custom_objects, run_namespace, in_flight, "nifi", target)
    deadline = time.monotonic() + 60
    while queued_before(nifi, STORE) < 3:  # raw, quarantine and manifest
        assert time.monotonic() < deadline, "the run's results never queued before Store in S3"
        time.sleep(0.5)

    # Restart NiFi; a second run is created while it is down.
    subprocess.run([REPO_ROOT / "devstack/services/nifi.sh", "stop"], check=True, capture_output=True)
    while_down = upload(s3, sample.csv_bytes(), "orders", "csv")
    run_with(custom_objects, run_namespace, while_down, "nifi", target)
    deadline = time.monotonic() + 30
    while (
        not (get_run(custom_objects, run_namespace, while_down.upload_id).get("status") or {})
        .get("message", "")
        .startswith("waiting for NiFi, which is not reachable")
    ):
        assert time.monotonic() < deadline, "the run's status never said NiFi was unreachable"
        time.sleep(0.3)
    ready = next(
        c
        for c in get_run(custom_objects, run_namespace, while_down.upload_id)["status"]["conditions"]
        if c["type"] == "Ready"
    )
    assert (ready["status"], ready["reason"]) == ("False", "Waiting")
    subprocess.run([REPO_ROOT / "devstack/services/nifi.sh", "start"], check=True, capture_output=True)

    # The queued FlowFiles survived the restart; releasing them finishes the run.
    assert queued_before(nifi, STORE) >= 3
    set_processor_state(nifi, STORE, "RUNNING")
    for up in (in_flight, while_down):
        status = finished_status(custom_objects, run_namespace, up)
        assert status["phase"] == "Succeeded", status
        assert status["counts"]["rejected"] == len(sample.rejected)
        rows = catalog.load_table(f"{target['namespace']}.{target['table']}").scan(
            row_filter=EqualTo("upload_id", up.upload_id)
        )
        assert rows.to_arrow().num_rows == 120 - len(sample.rejected)


@pytest.fixture
def impatient_operator(kube_api: client.ApiClient, tmp_path: Path) -> Iterator[tuple[OperatorProcess, str]]:
    """An operator of its own that gives NiFi 6 seconds per run."""
    core = client.CoreV1Api(kube_api)
    namespace = f"it-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    process = OperatorProcess(
        namespace,
        tmp_path / "operator.log",
        {"LAKEHOUSE_NIFI_POLL_SECONDS": "1", "LAKEHOUSE_NIFI_TIMEOUT_SECONDS": "6"},
    ).start()
    try:
        yield process, namespace
    finally:
        process.stop()
        core.delete_namespace(namespace)


def test_a_run_nifi_never_finishes_fails_after_the_timeout(
    impatient_operator: tuple[OperatorProcess, str],
    custom_objects: client.CustomObjectsApi,
    s3: Any,
    nifi: NiFiClient,
    store_running_afterwards: None,
) -> None:
    _, namespace = impatient_operator
    warm_up(custom_objects, namespace, s3)  # its 30-second check of the flow is now fresh
    set_processor_state(nifi, STORE, "STOPPED")
    stuck = upload(s3, orders(20).csv_bytes(), "orders", "csv")
    run_with(custom_objects, namespace, stuck, "nifi", scratch_target())

    status = wait_for_phase(custom_objects, namespace, stuck.upload_id, {"Succeeded", "Failed"}, timeout=60)["status"]

    assert status["phase"] == "Failed"
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "NiFiTimedOut"
    assert "did not finish the run in 6s" in ready["message"] and "lakehouse-ingest" in ready["message"]


def test_a_run_without_checksum_and_a_recreated_run_get_their_own_results(
    operator: OperatorProcess, run_namespace: str, custom_objects: client.CustomObjectsApi, s3: Any
) -> None:
    # First a bad file under some upload id: NiFi's manifest says MissingColumns.
    bad = upload(s3, b"order_id,amount\n1,2.50\n", "orders", "csv")
    run_with(custom_objects, run_namespace, bad, "nifi", scratch_target())
    assert finished_status(custom_objects, run_namespace, bad)["phase"] == "Failed"
    custom_objects.delete_namespaced_custom_object(GROUP, VERSION, run_namespace, PLURAL, bad.upload_id)
    while True:  # gone for good before its name is used again
        try:
            get_run(custom_objects, run_namespace, bad.upload_id)
        except ApiException as error:
            assert error.status == 404
            break
        time.sleep(0.2)

    # The same run name again, for a good file and without a sha256 (it is optional in the spec).
    good = upload(s3, orders(25, invalid_every=5).csv_bytes(), "orders", "csv", upload_id=bad.upload_id)
    manifest = run_body(good, "orders", engines={"ingest": "nifi"}, target=scratch_target())
    del manifest["spec"]["source"]["sha256"]
    create_run(custom_objects, run_namespace, manifest)

    status = finished_status(custom_objects, run_namespace, good)
    assert status["phase"] == "Succeeded", status
    assert status["counts"]["valid"] == 20 and status["counts"]["rejected"] == 5


def test_nifi_drops_assignments_without_the_operators_token(operator: OperatorProcess, s3: Any) -> None:
    """A POST to the flow's listener is not enough to make NiFi read or write S3: the token is."""
    settings = NiFiSettings()
    platform = PlatformSettings()
    engine = NiFiIngestEngine(settings, platform.s3, s3, "raw", "quarantine")
    deploy(engine.deployer)
    up = upload(s3, orders(10).csv_bytes(), "orders", "csv")
    run = RunContext(
        name=up.upload_id, namespace="none", upload_id=up.upload_id, dataset="orders",
        contract=ContractRegistry.default().get("orders"), source_uri=up.uri, source_format="csv",
        source_sha256=up.sha256, processing_date=dt.date.today(), ingest_timestamp=dt.datetime(2026, 1, 1),
        target_table="bronze_it.unused", owner={"uid": str(uuid.uuid4())},
    )  # fmt: skip
    manifest = result_location("raw", run)

    def post(assignment: dict[str, Any]) -> None:
        response = requests.post(stack_env("NIFI_LISTEN_URL")["NIFI_LISTEN_URL"], json=assignment, timeout=30)
        assert response.status_code == 200

    for token in ("", "not-the-token"):
        post(engine.assignment(run) | {"token": token})
    time.sleep(5)
    assert head_object(s3, manifest) is None  # dropped by Check assignment
    post(engine.assignment(run))  # the same assignment with the token goes through
    deadline = time.monotonic() + 60
    while head_object(s3, manifest) is None:
        assert time.monotonic() < deadline, "the assignment with the token was not processed"
        time.sleep(0.5)
