"""The API when a dependency is down, or the API itself is killed: uploads are refused with a clear
5xx and leave nothing behind; what can still be read is still served."""

from __future__ import annotations

import os
import signal
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kubernetes import client
from lakehouse_cli.multipart import MultipartUpload

from lakehouse.devtools.sample_data import orders
from lakehouse.k8s.ingestionrun import GROUP, PLURAL, VERSION
from tests.utils.api_checks import leftovers, post_upload, problem
from tests.utils.api_process import ApiProcess, running_api
from tests.utils.operator_process import free_port
from tests.utils.stack import stack_env
from tests.utils.upload_bodies import GeneratedCsv
from tests.utils.waiting import wait_until

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


# --- the API process killed mid-upload -----------------------------------------------------------

MIB = 1024 * 1024


@pytest.fixture
def scratch_bucket(s3: Any) -> Iterator[str]:
    """An uploads bucket of the test's own, so a sweep with a tiny age touches no other test's uploads."""
    bucket = f"uploads-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    yield bucket
    for upload in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    for stored in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        s3.delete_object(Bucket=bucket, Key=stored["Key"])
    s3.delete_bucket(Bucket=bucket)


def bucket_contents(s3: Any, bucket: str) -> tuple[list[str], list[str]]:
    """(complete objects, unfinished multipart uploads) of a bucket, by key."""
    objects = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    uploads = [u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]
    return objects, uploads


def uploaded_parts(s3: Any, bucket: str) -> int:
    uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return sum(
        len(s3.list_parts(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"]).get("Parts", [])) for u in uploads
    )


def test_api_killed_mid_upload_creates_no_run_and_its_parts_are_swept(
    run_namespace: str, scratch_bucket: str, custom_objects: client.CustomObjectsApi, s3: Any, tmp_path: Path
) -> None:
    """SIGKILL while a large file streams: the dead process cannot abort its multipart upload, so the next
    API process's sweeper does. The namespace is the test's own, so "no run" means none at all."""
    csv = GeneratedCsv.of_size(256 * MIB)
    upload = MultipartUpload(fields={"dataset": "orders"}, filename="big-orders.csv", file_size=csv.size)
    killed = threading.Event()
    outcome: list[httpx.Response | Exception] = []

    def body_that_stalls_after_some_parts() -> Iterator[bytes]:
        # 24 MiB, then nothing until the API is dead: the kill falls mid-upload, never after the last byte.
        for sent, chunk in enumerate(upload.body(csv.chunks())):
            if sent == 24:
                killed.wait(120)
            yield chunk

    def send(api: ApiProcess) -> None:
        try:
            outcome.append(
                httpx.post(
                    f"{api.url}/api/v1/uploads",
                    content=body_that_stalls_after_some_parts(),
                    headers={**upload.headers(), **api.headers},
                    timeout=httpx.Timeout(60),
                )
            )
        except Exception as error:  # the connection dies with the server
            outcome.append(error)

    no_sweep = {"LAKEHOUSE_UPLOADS_BUCKET": scratch_bucket, "LAKEHOUSE_UPLOAD_SWEEP_INTERVAL_SECONDS": "0"}
    dying = ApiProcess(run_namespace, tmp_path / "killed-api.log", no_sweep).start()
    sender = threading.Thread(target=send, args=(dying,))
    sender.start()
    try:
        wait_until(lambda: uploaded_parts(s3, scratch_bucket) >= 2, "parts of the upload in S3", timeout=60)
        os.kill(dying.pid, signal.SIGKILL)
        assert dying.process is not None and dying.process.wait(30) == -signal.SIGKILL
    finally:
        killed.set()
        sender.join(60)
        dying.stop()

    assert not sender.is_alive() and len(outcome) == 1
    assert isinstance(outcome[0], httpx.TransportError), outcome  # no 202: the client knows it failed
    runs = custom_objects.list_namespaced_custom_object(GROUP, VERSION, run_namespace, PLURAL)["items"]
    assert runs == []
    objects, unfinished = bucket_contents(s3, scratch_bucket)
    assert objects == [] and len(unfinished) == 1, (objects, unfinished)  # the orphan the sweeper is for

    sweeping = {
        "LAKEHOUSE_UPLOADS_BUCKET": scratch_bucket,
        "LAKEHOUSE_UPLOAD_SWEEP_INTERVAL_SECONDS": "1",
        "LAKEHOUSE_UPLOAD_SWEEP_AGE_SECONDS": "1",
    }
    with running_api(run_namespace, tmp_path / "next-api.log", sweeping) as next_api:
        wait_until(lambda: bucket_contents(s3, scratch_bucket)[1] == [], "the orphaned upload aborted", timeout=60)
        swept_log = next_api.log_text()

    assert bucket_contents(s3, scratch_bucket) == ([], [])
    assert "aborted 1 incomplete multipart uploads" in swept_log and unfinished[0] in swept_log
    assert custom_objects.list_namespaced_custom_object(GROUP, VERSION, run_namespace, PLURAL)["items"] == []
