"""Apache NiFi of the local stack: the pinned release answers on its REST API, the extension types the
lakehouse flows use are loaded, and a record conversion really runs on the JDK NiFi runs on."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from lakehouse.nifi.deploy import DEFAULT_FLOW
from tests.utils.stack import stack_env

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 30

# Extension types of the standard bundles, by simple class name (the lakehouse-ingest flow itself is
# exercised by test_nifi_engine.py).
PROCESSOR_TYPES = ("ValidateRecord", "ConvertRecord", "UpdateAttribute", "GenerateFlowFile", "PutFile")
CONTROLLER_SERVICE_TYPES = ("CSVReader", "JsonTreeReader", "JsonRecordSetWriter", "AvroRecordSetWriter")
# The types the original flow design used, whose bundles (nifi-kafka-*, nifi-aws-*, nifi-parquet-nar with
# nifi-hadoop-libraries-nar) and their processor jars are served by no package registry this stack
# installs from, for any NiFi 2 release (see devstack/services/nifi.sh). Strict: once the stack
# installs them, these tests pass and fail the run until they move to the lists above.
NOT_SERVED = pytest.mark.xfail(
    strict=True,
    reason="bundle not served by the package registry (devstack/services/nifi.sh installs what is)",
)
UNSERVED_PROCESSOR_TYPES = ("ConsumeKafka", "PublishKafka", "FetchS3Object", "PutS3Object")
UNSERVED_CONTROLLER_SERVICE_TYPES = (
    "ParquetRecordSetWriter",
    "Kafka3ConnectionService",
    "AWSCredentialsProviderControllerService",
)


def pinned_nifi_version() -> str:
    """NIFI_VERSION of devstack/versions.env."""
    out = subprocess.run(
        ["bash", "-c", 'source devstack/versions.env && printf %s "$NIFI_VERSION"'],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert out, "NIFI_VERSION is not declared in devstack/versions.env"
    return out


class NiFi:
    """A few calls of the NiFi REST API."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.http = requests.Session()

    def get(self, path: str) -> Any:
        response = self.http.get(f"{self.url}{path}", timeout=TIMEOUT_S)
        response.raise_for_status()
        return response.json()

    def send(self, method: str, path: str, body: dict[str, Any] | None = None, **params: Any) -> Any:
        response = self.http.request(method, f"{self.url}{path}", json=body, params=params, timeout=TIMEOUT_S)
        assert response.ok, f"{method} {path}: HTTP {response.status_code}: {response.text[:500]}"
        return response.json() if response.content else None

    def create(self, path: str, component: dict[str, Any]) -> dict[str, Any]:
        return self.send("POST", path, {"revision": {"version": 0}, "component": component})

    def type_names(self, listing: str, key: str) -> set[str]:
        return {entry["type"].rsplit(".", 1)[-1] for entry in self.get(f"/flow/{listing}")[key]}


def wait_until(check: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out after {TIMEOUT_S}s waiting for {what}"
        time.sleep(0.25)


@pytest.fixture(scope="module")
def nifi() -> NiFi:
    return NiFi(stack_env("NIFI_API_URL")["NIFI_API_URL"])


@pytest.fixture(scope="module")
def processor_types(nifi: NiFi) -> set[str]:
    return nifi.type_names("processor-types", "processorTypes")


@pytest.fixture(scope="module")
def controller_service_types(nifi: NiFi) -> set[str]:
    return nifi.type_names("controller-service-types", "controllerServiceTypes")


def test_runs_the_pinned_release(nifi: NiFi) -> None:
    assert nifi.get("/flow/about")["about"]["version"] == pinned_nifi_version()


@pytest.mark.parametrize(
    "name", [*PROCESSOR_TYPES, *(pytest.param(n, marks=NOT_SERVED) for n in UNSERVED_PROCESSOR_TYPES)]
)
def test_processor_type_is_loaded(processor_types: set[str], name: str) -> None:
    assert name in processor_types


@pytest.mark.parametrize(
    "name",
    [*CONTROLLER_SERVICE_TYPES, *(pytest.param(n, marks=NOT_SERVED) for n in UNSERVED_CONTROLLER_SERVICE_TYPES)],
)
def test_controller_service_type_is_loaded(controller_service_types: set[str], name: str) -> None:
    assert name in controller_service_types


@pytest.fixture
def scratch_group(nifi: NiFi) -> Iterator[str]:
    """A fresh process group under the root; stopped, emptied and deleted afterwards."""
    root = nifi.get("/flow/process-groups/root")["processGroupFlow"]["id"]
    group = nifi.create(
        f"/process-groups/{root}/process-groups",
        {"name": f"test-{uuid.uuid4().hex[:8]}", "position": {"x": 0, "y": 0}},
    )["id"]
    try:
        yield group
    finally:
        nifi.send("PUT", f"/flow/process-groups/{group}", {"id": group, "state": "STOPPED"})
        wait_until(
            lambda: all(
                p["status"]["aggregateSnapshot"]["activeThreadCount"] == 0
                for p in nifi.get(f"/process-groups/{group}/processors")["processors"]
            ),
            "the test processors to stop",
        )
        drop = nifi.send("POST", f"/process-groups/{group}/empty-all-connections-requests")["dropRequest"]
        drop_path = f"/process-groups/{group}/empty-all-connections-requests/{drop['id']}"
        wait_until(lambda: nifi.get(drop_path)["dropRequest"]["finished"], "the test queues to empty")
        nifi.send("DELETE", drop_path)
        nifi.send("PUT", f"/flow/process-groups/{group}/controller-services", {"id": group, "state": "DISABLED"})
        wait_until(
            lambda: all(
                s["component"]["state"] == "DISABLED"
                for s in nifi.get(f"/flow/process-groups/{group}/controller-services")["controllerServices"]
            ),
            "the test controller services to disable",
        )
        version = nifi.get(f"/process-groups/{group}")["revision"]["version"]
        nifi.send("DELETE", f"/process-groups/{group}", version=version)


def test_convert_record_turns_csv_into_json(nifi: NiFi, scratch_group: str) -> None:
    """GenerateFlowFile (CSV) -> ConvertRecord (CSVReader -> JsonRecordSetWriter) -> queue: the records arrive."""
    group = scratch_group
    reader = nifi.create(
        f"/process-groups/{group}/controller-services",
        {"type": "org.apache.nifi.csv.CSVReader", "name": "csv"},
    )
    writer = nifi.create(
        f"/process-groups/{group}/controller-services",
        {"type": "org.apache.nifi.json.JsonRecordSetWriter", "name": "json"},
    )
    for service in (reader, writer):
        nifi.send(
            "PUT",
            f"/controller-services/{service['id']}/run-status",
            {"revision": service["revision"], "state": "ENABLED"},
        )
    generate = nifi.create(
        f"/process-groups/{group}/processors",
        {
            "type": "org.apache.nifi.processors.standard.GenerateFlowFile",
            "name": "csv source",
            "position": {"x": 0, "y": 0},
            "config": {
                "schedulingPeriod": "1 hour",
                "properties": {"generate-ff-custom-text": "id,name\n1,alpha\n2,beta\n"},
            },
        },
    )
    convert = nifi.create(
        f"/process-groups/{group}/processors",
        {
            "type": "org.apache.nifi.processors.standard.ConvertRecord",
            "name": "csv to json",
            "position": {"x": 0, "y": 200},
            "config": {
                "properties": {"Record Reader": reader["id"], "Record Writer": writer["id"]},
                "autoTerminatedRelationships": ["failure"],
            },
        },
    )
    funnel = nifi.create(f"/process-groups/{group}/funnels", {"position": {"x": 0, "y": 400}})

    def connect(source: dict[str, Any], source_type: str, destination: dict[str, Any], destination_type: str) -> str:
        return nifi.create(
            f"/process-groups/{group}/connections",
            {
                "source": {"id": source["id"], "groupId": group, "type": source_type},
                "destination": {"id": destination["id"], "groupId": group, "type": destination_type},
                "selectedRelationships": ["success"],
            },
        )["id"]

    connect(generate, "PROCESSOR", convert, "PROCESSOR")
    converted = connect(convert, "PROCESSOR", funnel, "FUNNEL")

    wait_until(
        lambda: nifi.get(f"/controller-services/{writer['id']}")["component"]["state"] == "ENABLED",
        "the record reader and writer to enable",
    )
    convert = nifi.get(f"/processors/{convert['id']}")
    nifi.send("PUT", f"/processors/{convert['id']}/run-status", {"revision": convert["revision"], "state": "RUNNING"})
    generate = nifi.get(f"/processors/{generate['id']}")
    nifi.send(
        "PUT", f"/processors/{generate['id']}/run-status", {"revision": generate["revision"], "state": "RUN_ONCE"}
    )

    def listed_flowfiles() -> list[dict[str, Any]]:
        request = nifi.send("POST", f"/flowfile-queues/{converted}/listing-requests")["listingRequest"]
        path = f"/flowfile-queues/{converted}/listing-requests/{request['id']}"
        request = wait_until(lambda: (r := nifi.get(path)["listingRequest"])["finished"] and r, "a queue listing")
        nifi.send("DELETE", path)
        return request["flowFileSummaries"]

    summaries = wait_until(listed_flowfiles, "a FlowFile on ConvertRecord's success relationship")
    flowfile = summaries[0]["uuid"]
    content = nifi.http.get(f"{nifi.url}/flowfile-queues/{converted}/flowfiles/{flowfile}/content", timeout=TIMEOUT_S)
    content.raise_for_status()

    assert json.loads(content.content) == [{"id": 1, "name": "alpha"}, {"id": 2, "name": "beta"}]


def test_every_processor_type_of_the_ingest_flow_is_loaded(processor_types: set[str]) -> None:
    flow = json.loads(DEFAULT_FLOW.read_text())
    used = {p["type"].rsplit(".", 1)[-1] for p in flow["flowContents"]["processors"]}
    assert used - processor_types == set()
    assert len(used) >= 7
