"""Creating IngestionRuns the way the upload API does, and following them."""

from __future__ import annotations

import datetime as dt
import hashlib
import time
import uuid
from dataclasses import dataclass
from typing import Any

from kubernetes import client, watch

from lakehouse.k8s.ingestionrun import GROUP, PLURAL, VERSION
from lakehouse.k8s.ingestionrun.phase import Phase
from lakehouse.k8s.ingestionrun.spec import IngestionRunSpec, ingestion_run
from lakehouse.storage.layout import upload_location

TERMINAL = {phase.value for phase in Phase if phase.is_terminal}


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
    location = upload_location("uploads", dataset, upload_id, filename or f"data.{fmt}", dt.date.today())
    s3.put_object(Bucket=location.bucket, Key=location.key, Body=data)
    return Upload(upload_id, location.uri, len(data), hashlib.sha256(data).hexdigest(), fmt)


def run_body(
    up: Upload, dataset: str, *, engines: dict[str, str] | None = None, target: dict[str, str] | None = None
) -> dict[str, Any]:
    """The run the upload API would create (without its labels); tests vary engines and target."""
    spec = {
        "uploadId": up.upload_id,
        "dataset": dataset,
        "source": {"uri": up.uri, "format": up.fmt, "sizeBytes": up.size, "sha256": up.sha256},
        "engines": engines,
        "target": target,
    }
    return ingestion_run(IngestionRunSpec.model_validate(spec))


def create_run(api: client.CustomObjectsApi, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]:
    return api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, manifest)


def get_run(api: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any]:
    return api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)


def retrying(api: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any] | None:
    """The run's status once an attempt of its current step has failed (and will be retried), else None."""
    status = get_run(api, namespace, name).get("status") or {}
    ready = next((c for c in status.get("conditions", []) if c["type"] == "Ready"), {})
    return status if ready.get("reason") == "Retrying" else None


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


def watch_for_phase(
    api: client.CustomObjectsApi,
    namespace: str,
    name: str,
    phases: set[str],
    since_resource_version: str,
    timeout: float = 120,
) -> dict[str, Any]:
    """The run as of the first change that puts it in one of `phases`. A watch from the resource version
    the run was created at sees every change, so a phase the run passes through in a few milliseconds is
    not missed, as polling could miss it."""
    deadline = time.monotonic() + timeout
    resource_version = since_resource_version
    watcher = watch.Watch()
    run: dict[str, Any] = {}
    while (remaining := deadline - time.monotonic()) > 0:
        for event in watcher.stream(
            api.list_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            field_selector=f"metadata.name={name}",
            resource_version=resource_version,
            timeout_seconds=max(1, int(remaining)),
        ):
            run = event["object"]
            resource_version = run["metadata"]["resourceVersion"]
            if (run.get("status") or {}).get("phase") in phases:
                watcher.stop()
                return run
    raise TimeoutError(f"{name} not seen in {sorted(phases)} after {timeout}s; status: {run.get('status')}")
