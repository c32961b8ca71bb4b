"""Creating IngestionRuns the way the upload API does, and following them."""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass
from typing import Any

from kubernetes import client

GROUP, VERSION, PLURAL = "lakehouse.dev", "v1alpha1", "ingestionruns"
TERMINAL = {"Succeeded", "Failed"}


def new_upload_id(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class Upload:
    upload_id: str
    uri: str
    size: int
    sha256: str
    fmt: str


def upload(
    s3: Any, data: bytes, dataset: str, fmt: str, upload_id: str | None = None, filename: str | None = None
) -> Upload:
    upload_id = upload_id or new_upload_id()
    key = f"{dataset}/{time.strftime('%Y-%m-%d')}/{upload_id}/{filename or 'data.' + fmt}"
    s3.put_object(Bucket="uploads", Key=key, Body=data)
    return Upload(upload_id, f"s3://uploads/{key}", len(data), hashlib.sha256(data).hexdigest(), fmt)


def run_manifest(
    up: Upload, dataset: str, *, engines: dict[str, str] | None = None, target: dict[str, str] | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "uploadId": up.upload_id,
        "dataset": dataset,
        "source": {"uri": up.uri, "format": up.fmt, "sizeBytes": up.size, "sha256": up.sha256},
    }
    if engines:
        spec["engines"] = engines
    if target:
        spec["target"] = target
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "IngestionRun",
        "metadata": {"name": up.upload_id},
        "spec": spec,
    }


def create_run(api: client.CustomObjectsApi, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]:
    return api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, manifest)


def get_run(api: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any]:
    return api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)


def wait_for_phase(
    api: client.CustomObjectsApi,
    namespace: str,
    name: str,
    phases: set[str],
    timeout: float = 120,
    poll: float = 0.1,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    run: dict[str, Any] = {}
    while time.monotonic() < deadline:
        run = get_run(api, namespace, name)
        if (run.get("status") or {}).get("phase") in phases:
            return run
        time.sleep(poll)
    raise TimeoutError(f"{name} not in {sorted(phases)} after {timeout}s; status: {run.get('status')}")
