"""Every Lakekeeper management request we send is valid against Lakekeeper's published OpenAPI spec.

The server here is a stdlib HTTP server that validates what our client really sends (method,
path and body) against the spec and answers with spec-shaped responses; it checks our side of
the contract, it does not pretend to be Lakekeeper.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jsonschema
import pytest
import yaml

from lakehouse.catalog.lakekeeper import (
    BOOTSTRAP_PATH,
    SERVER_INFO_PATH,
    WAREHOUSE_PATH,
    LakekeeperManagement,
    S3Warehouse,
    bootstrap_request,
    create_warehouse_request,
)
from tests.utils.shared import LAKEKEEPER_MANAGEMENT_SPEC

SPEC_PATH = LAKEKEEPER_MANAGEMENT_SPEC


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    if not SPEC_PATH.exists():
        pytest.fail(f"Lakekeeper spec missing at {SPEC_PATH} (../shared must sit beside the repo)")
    return yaml.safe_load(SPEC_PATH.read_text())


def request_schema(spec: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    operation = spec["paths"][path][method]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]
    # Resolve $refs inside the spec by making the spec the schema's root document.
    return {**ref, "components": spec["components"]}


def response_schema(spec: dict[str, Any], path: str, method: str, status: str) -> dict[str, Any]:
    ref = spec["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
    return {**ref, "components": spec["components"]}


def validate(schema: dict[str, Any], instance: Any) -> None:
    jsonschema.Draft202012Validator(schema).validate(instance)


WAREHOUSE = S3Warehouse(
    name="lakehouse",
    bucket="warehouse",
    region="us-east-1",
    endpoint="http://127.0.0.1:9000",
    key_prefix="bronze",
    access_key_id="AKIDEXAMPLE",
    secret_access_key="secret-example",
)


def test_bootstrap_body_matches_spec(spec: dict[str, Any]) -> None:
    validate(request_schema(spec, BOOTSTRAP_PATH, "post"), bootstrap_request())


@pytest.mark.parametrize(
    "warehouse",
    [WAREHOUSE, S3Warehouse(name="aws", bucket="lake", region="eu-west-1", path_style_access=False)],
    ids=["s3-compatible-with-credential", "aws-system-identity"],
)
def test_create_warehouse_body_matches_spec(spec: dict[str, Any], warehouse: S3Warehouse) -> None:
    validate(request_schema(spec, WAREHOUSE_PATH, "post"), create_warehouse_request(warehouse))


def test_spec_rejects_a_body_missing_the_storage_profile(spec: dict[str, Any]) -> None:
    """Guards the check itself: the schema must really constrain bodies."""
    body = create_warehouse_request(WAREHOUSE)
    del body["storage-profile"]
    with pytest.raises(jsonschema.ValidationError):
        validate(request_schema(spec, WAREHOUSE_PATH, "post"), body)


class SpecCheckingServer(ThreadingHTTPServer):
    spec: dict[str, Any]
    bootstrapped = False
    warehouses: list[dict[str, Any]]
    received: list[tuple[str, str]]
    violations: list[str]


class SpecCheckingHandler(BaseHTTPRequestHandler):
    server: SpecCheckingServer

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: dict[str, Any] | None = None) -> None:
        payload = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _check(self, method: str) -> dict[str, Any] | None:
        self.server.received.append((method, self.path))
        if self.path not in self.server.spec["paths"] or method not in self.server.spec["paths"][self.path]:
            self.server.violations.append(f"{method.upper()} {self.path} is not in the spec")
            return None
        if method != "post":
            return None
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        try:
            validate(request_schema(self.server.spec, self.path, method), body)
        except jsonschema.ValidationError as error:
            self.server.violations.append(f"{self.path}: {error.message}")
        return body

    def do_GET(self) -> None:
        self._check("get")
        if self.path == SERVER_INFO_PATH:
            self._reply(200, {"bootstrapped": self.server.bootstrapped})
        else:
            self._reply(200, {"warehouses": self.server.warehouses})

    def do_POST(self) -> None:
        body = self._check("post")
        if self.path == BOOTSTRAP_PATH:
            self.server.bootstrapped = True
            self._reply(204)
        else:
            assert body is not None
            warehouse = {
                "id": "6f2c2d3e-8a1b-4c5d-9e0f-1a2b3c4d5e6f",
                "warehouse-id": "6f2c2d3e-8a1b-4c5d-9e0f-1a2b3c4d5e6f",
                "name": body["warehouse-name"],
                "project-id": "00000000-0000-0000-0000-000000000000",
                "storage-profile": body["storage-profile"],
                "delete-profile": {"type": "hard"},
                "status": "active",
                "protected": False,
                "allowed-format-versions": [1, 2, 3],
            }
            self.server.warehouses.append(warehouse)
            self._reply(201, warehouse)


@pytest.fixture
def spec_server(spec: dict[str, Any]) -> Iterator[SpecCheckingServer]:
    server = SpecCheckingServer(("127.0.0.1", 0), SpecCheckingHandler)
    server.spec, server.warehouses, server.received, server.violations = spec, [], [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def test_client_sends_only_spec_valid_requests_and_is_idempotent(spec_server: SpecCheckingServer) -> None:
    client = LakekeeperManagement(f"http://127.0.0.1:{spec_server.server_address[1]}")

    assert client.ensure_bootstrapped() is True
    assert client.ensure_bootstrapped() is False
    first_id = client.ensure_warehouse(WAREHOUSE)
    second_id = client.ensure_warehouse(WAREHOUSE)

    assert spec_server.violations == []
    assert first_id == second_id
    assert len(spec_server.warehouses) == 1
    assert ("post", BOOTSTRAP_PATH) in spec_server.received
    validate(response_schema(spec_server.spec, WAREHOUSE_PATH, "post", "201"), spec_server.warehouses[0])
