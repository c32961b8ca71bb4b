"""A stored upload, its id, and the IngestionRun that ingests it (pure, no I/O)."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any

from lakehouse.k8s.ingestionrun import GROUP
from lakehouse.k8s.ingestionrun.spec import Engines, IngestionRunSpec, Source, ingestion_run
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


def run_for(upload: StoredUpload) -> dict[str, Any]:
    """The IngestionRun body for a stored upload, named after the upload."""
    labels = {MANAGED_BY_LABEL: MANAGED_BY, DATASET_LABEL: upload.dataset}
    if upload.idempotency_key_hash:
        labels[IDEMPOTENCY_LABEL] = upload.idempotency_key_hash[:63]  # label values hold at most 63 characters
    spec = IngestionRunSpec(
        upload_id=upload.upload_id,
        dataset=upload.dataset,
        source=Source(
            uri=upload.location.uri,
            format=upload.format,
            size_bytes=upload.size,
            sha256=upload.sha256,
            filename=upload.filename,
        ),
        engines=Engines.model_validate(upload.engines) if upload.engines else None,
    )
    return ingestion_run(spec, labels)
