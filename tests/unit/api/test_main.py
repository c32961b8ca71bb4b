"""The app's wiring without any server: auth, problem+json for every error, and the upload path
with an in-memory S3 and a stubbed Kubernetes."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import pytest
from fastapi import FastAPI
from lakehouse_api.main import create_app
from lakehouse_api.problems import ProblemError
from lakehouse_api.settings import ApiSettings
from lakehouse_api.uploads import service, sniff

from lakehouse.contracts.registry import ContractRegistry
from lakehouse.devtools.sample_data import orders
from tests.utils.asgi_client import AsgiClient
from tests.utils.fake_s3 import FakeS3
from tests.utils.upload_bodies import form

KEY = "lk-unit-test-key"
MIB = 1024 * 1024


@pytest.fixture
def app() -> FastAPI:
    settings = ApiSettings(
        LAKEHOUSE_API_KEYS_SHA256=hashlib.sha256(KEY.encode()).hexdigest(),
        LAKEHOUSE_MAX_UPLOAD_BYTES=str(12 * MIB),
        LAKEHOUSE_UPLOAD_PART_BYTES=str(5 * MIB),
    )
    app = create_app(settings, ContractRegistry.default())
    app.state.backends.__dict__["s3"] = FakeS3()  # fills the cached_property, so boto3 is never built
    return app


@pytest.fixture
def http(app: FastAPI) -> AsgiClient:
    return AsgiClient(app, headers={"X-API-Key": KEY})


@pytest.fixture
def created_runs(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []

    def create_run(_: Any, manifest: dict[str, Any]) -> dict[str, Any]:
        runs.append(manifest)
        return manifest

    monkeypatch.setattr(service, "create_run", create_run)
    monkeypatch.setattr(
        service, "get_run", lambda _, name: next((r for r in runs if r["metadata"]["name"] == name), None)
    )
    return runs


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["instance"]
    return body


def test_missing_and_wrong_keys(app: FastAPI) -> None:
    anonymous = AsgiClient(app)
    assert_problem(anonymous.get("/api/v1/datasets"), 401)
    assert_problem(anonymous.get("/api/v1/datasets", headers={"X-API-Key": "nope"}), 403)
    assert anonymous.get("/api/v1/datasets", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200


def test_framework_errors_are_problems_too(http: AsgiClient) -> None:
    assert assert_problem(http.get("/nowhere"), 404)["type"] == "about:blank"
    assert_problem(http.delete("/api/v1/datasets"), 405)
    invalid = assert_problem(http.get("/api/v1/uploads", params={"limit": "many"}), 422)
    assert invalid["errors"][0]["loc"] == ["query", "limit"] and "input" not in invalid["errors"][0]


def test_unexpected_errors_are_a_generic_500_and_logged_without_headers(
    app: FastAPI, http: AsgiClient, caplog: pytest.LogCaptureFixture
) -> None:
    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("internal detail")

    with caplog.at_level(logging.ERROR, logger="lakehouse_api"):
        body = assert_problem(http.get("/boom"), 500)

    assert "internal detail" not in body["detail"]
    assert "unexpected error on GET /boom" in caplog.text and KEY not in caplog.text


def test_upload_stores_the_file_and_creates_its_run(
    app: FastAPI, http: AsgiClient, created_runs: list[dict[str, Any]]
) -> None:
    data = orders(5).csv_bytes()
    headers, body = form(data, transform_engine="arrow")

    response = http.post("/api/v1/uploads", content=body, headers=headers)

    assert response.status_code == 202, response.text
    (manifest,) = created_runs
    s3: FakeS3 = app.state.backends.s3
    key = manifest["spec"]["source"]["uri"].removeprefix("s3://uploads/")
    assert s3.objects[key] == data and s3.calls == ["put_object"]
    assert manifest["spec"]["engines"] == {"transform": "arrow"}
    assert response.json()["statusUrl"].endswith(f"/api/v1/uploads/{manifest['metadata']['name']}")


def test_run_creation_failure_removes_the_file(app: FastAPI, http: AsgiClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def unavailable(*_: Any) -> None:
        raise ProblemError(503, "the Kubernetes API is unavailable", kind="backend-unavailable")

    monkeypatch.setattr(service, "create_run", unavailable)
    headers, body = form(orders(5).csv_bytes())

    refused = assert_problem(http.post("/api/v1/uploads", content=body, headers=headers), 503)

    s3: FakeS3 = app.state.backends.s3
    assert "not kept" in refused["detail"] and refused["uploadId"].startswith("up-")
    assert s3.calls == ["put_object", "delete_object"] and s3.objects == {}


def test_upload_over_the_limit_mid_stream_aborts_the_multipart_upload(
    app: FastAPI, http: AsgiClient, created_runs: list
) -> None:
    """Without a Content-Length the limit is checked on the streamed bytes, after parts were sent."""
    headers, body = form(b"order_id\n" + b"1\n" * (7 * MIB))
    del headers["Content-Length"]
    chunks = [body[start : start + 256 * 1024] for start in range(0, len(body), 256 * 1024)]

    refused = assert_problem(http.post("/api/v1/uploads", content=chunks, headers=headers), 413)

    s3: FakeS3 = app.state.backends.s3
    assert refused["maxBytes"] == 12 * MIB and created_runs == []
    assert s3.calls == ["create_multipart_upload", "abort_multipart_upload"] and s3.objects == {}


def test_declared_length_over_the_limit_is_refused_before_reading(http: AsgiClient) -> None:
    headers, _ = form(b"x")
    headers["Content-Length"] = str(100 * MIB)

    assert_problem(http.post("/api/v1/uploads", content=b"", headers=headers), 413)


def test_idempotent_retry_replays_without_storing_again(
    app: FastAPI, http: AsgiClient, created_runs: list[dict[str, Any]]
) -> None:
    headers, body = form(orders(3).csv_bytes())
    headers["Idempotency-Key"] = "same"

    first = http.post("/api/v1/uploads", content=body, headers=headers)
    second = http.post("/api/v1/uploads", content=body, headers=headers)

    assert first.json()["uploadId"] == second.json()["uploadId"] and second.json()["replayed"] is True
    assert len(created_runs) == 1 and app.state.backends.s3.calls == ["put_object"]


@pytest.mark.parametrize("chunk_bytes", [4 * 1024, 4 * MIB], ids=["small-chunks", "one-chunk"])
def test_the_format_is_judged_on_exactly_the_first_64_kib_however_the_body_arrives(
    chunk_bytes: int, http: AsgiClient, created_runs: list[dict[str, Any]]
) -> None:
    data = orders(5000).csv_bytes()
    assert len(data) > 2 * sniff.SNIFF_BYTES
    data = data[: sniff.SNIFF_BYTES + 100] + b"\x00" + data[sniff.SNIFF_BYTES + 101 :]  # binary only past the window
    headers, body = form(data)
    chunks = [body[start : start + chunk_bytes] for start in range(0, len(body), chunk_bytes)]

    response = http.post("/api/v1/uploads", content=chunks, headers=headers)

    assert response.status_code == 202, response.text
    assert response.json()["format"] == "csv" and len(created_runs) == 1
