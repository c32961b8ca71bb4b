"""The API when a dependency is down: uploads are refused with a clear 5xx and leave nothing
behind; what can still be read is still served."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from lakehouse.devtools.sample_data import orders
from tests.utils.api_checks import leftovers, post_upload, problem
from tests.utils.api_process import ApiProcess, running_api
from tests.utils.operator_process import free_port
from tests.utils.stack import stack_env

pytestmark = pytest.mark.integration


def client_for(api: ApiProcess) -> httpx.Client:
    return httpx.Client(base_url=api.url, headers=api.headers, timeout=60)


@pytest.fixture
def stack_namespace() -> str:
    return stack_env("KUBECONFIG", "S3_ENDPOINT_URL", "LAKEHOUSE_NAMESPACE")["LAKEHOUSE_NAMESPACE"]


@pytest.fixture
def api_without_s3(stack_namespace: str, tmp_path: Path) -> Iterator[ApiProcess]:
    env = {"S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}", "LAKEHOUSE_BACKEND_TIMEOUT": "2"}
    with running_api(stack_namespace, tmp_path / "api.log", env) as api:
        yield api


def test_s3_down_refuses_uploads_with_503_and_keeps_serving_reads(api_without_s3: ApiProcess) -> None:
    with client_for(api_without_s3) as http:
        refused = problem(post_upload(http, orders(5).csv_bytes()), 503)
        uploads = http.get("/api/v1/uploads", params={"limit": 5})
        datasets = http.get("/api/v1/datasets")
        ready = http.get("/readyz")

    assert refused["type"].endswith("/storage-unavailable") and "retry" in refused["detail"].lower()
    assert uploads.status_code == 200 and datasets.status_code == 200
    unready = problem(ready, 503)
    assert unready["ready"] is False and "s3" in unready["detail"]
    checks = unready["checks"]
    assert checks["s3"]["ok"] is False and checks["kubernetes"]["ok"] is True


def test_run_that_cannot_be_created_leaves_no_file(stack_namespace: str, s3: Any, tmp_path: Path) -> None:
    """A namespace that does not exist: the Kubernetes API refuses the run, so the stored file goes too."""
    with running_api("no-such-namespace", tmp_path / "api.log") as api, client_for(api) as http:
        refused = problem(post_upload(http, orders(5).csv_bytes()), 500)

    assert "IngestionRun" in refused["detail"] and "not kept" in refused["detail"]
    assert leftovers(s3, "orders", refused["uploadId"]) == []


@pytest.fixture
def unreachable_kubeconfig(tmp_path: Path) -> Path:
    """The stack's kubeconfig with the API server moved to a port where nothing listens."""
    config = yaml.safe_load(Path(stack_env("KUBECONFIG")["KUBECONFIG"]).read_text())
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = f"https://127.0.0.1:{free_port()}"
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def test_kubernetes_down_answers_503_and_leaves_no_file(
    stack_namespace: str, unreachable_kubeconfig: Path, s3: Any, tmp_path: Path
) -> None:
    env = {"KUBECONFIG": str(unreachable_kubeconfig), "LAKEHOUSE_BACKEND_TIMEOUT": "2"}
    with running_api(stack_namespace, tmp_path / "api.log", env) as api, client_for(api) as http:
        refused = problem(post_upload(http, orders(5).csv_bytes()), 503)
        idempotent = problem(post_upload(http, orders(5).csv_bytes(), headers={"Idempotency-Key": "k-1"}), 503)
        datasets = http.get("/api/v1/datasets")

    assert refused["type"].endswith("/backend-unavailable") and "not kept" in refused["detail"]
    assert leftovers(s3, "orders", refused["uploadId"]) == []
    # With an Idempotency-Key the earlier run cannot be looked up, so the upload is refused before storing.
    assert "uploadId" not in idempotent
    assert datasets.status_code == 200
