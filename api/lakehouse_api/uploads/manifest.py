"""Pure builders: upload ids, object keys and the IngestionRun manifest of a stored upload."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any

from lakehouse_operator.api import GROUP, KIND, VERSION

from lakehouse.storage.s3 import S3Location

IDEMPOTENCY_LABEL = f"{GROUP}/idempotency-key-hash"
DATASET_LABEL = f"{GROUP}/dataset"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "lakehouse-api"


@dataclass(frozen=True)
class StoredUpload:
    """A file that is complete in S3 and measured, waiting for its run."""

    upload_id: str
    dataset: str
    location: S3Location
    format: str
    size: int
    sha256: str
    filename: str
    engines: dict[str, str] = field(default_factory=dict)
    idempotency_key_hash: str | None = None


def new_upload_id() -> str:
    return f"up-{uuid.uuid4().hex}"


def idempotency_key_hash(caller_key_sha256: str, idempotency_key: str) -> str:
    """Scoped to the caller's API key, so two clients that both pick "1" do not share a run."""
    return hashlib.sha256(f"{caller_key_sha256}\n{idempotency_key}".encode()).hexdigest()


def idempotent_upload_id(key_hash: str) -> str:
    """The same Idempotency-Key always names the same run, so a concurrent retry collides on
    creation (409) instead of making a second run."""
    return f"up-{key_hash[:32]}"


def object_location(bucket: str, dataset: str, upload_id: str, filename: str, today: dt.date) -> S3Location:
    return S3Location(bucket, f"{dataset}/{today.isoformat()}/{upload_id}/{filename}")


def run_manifest(upload: StoredUpload) -> dict[str, Any]:
    labels = {MANAGED_BY_LABEL: MANAGED_BY, DATASET_LABEL: upload.dataset}
    if upload.idempotency_key_hash:
        labels[IDEMPOTENCY_LABEL] = upload.idempotency_key_hash[:63]  # label values hold at most 63 characters
    spec: dict[str, Any] = {
        "uploadId": upload.upload_id,
        "dataset": upload.dataset,
        "source": {
            "uri": upload.location.uri,
            "format": upload.format,
            "sizeBytes": upload.size,
            "sha256": upload.sha256,
            "filename": upload.filename,
        },
    }
    if upload.engines:
        spec["engines"] = dict(upload.engines)
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": upload.upload_id, "labels": labels},
        "spec": spec,
    }
