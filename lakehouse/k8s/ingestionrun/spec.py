"""What a run asks for: the spec's fields, their rules, and the one builder of an IngestionRun body."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from pydantic import Field, ValidationInfo, model_validator

from lakehouse.formats import SourceFormat
from lakehouse.k8s.ingestionrun import API_VERSION, KIND
from lakehouse.k8s.model import K8sModel

# A dataset name is also an Iceberg identifier and a path segment of every object key.
DATASET_NAME_PATTERN = r"^[a-z_][a-z0-9_]*$"
DATASET_NAME_MAX_LENGTH = 63
# The upload id names the run, so it is a Kubernetes object name (RFC 1123 label).
UPLOAD_ID_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
UPLOAD_ID_MAX_LENGTH = 63
# The source is an upload: s3://<bucket>/<dataset>/<upload date>/<upload id>/<file name>, the layout of
# lakehouse.storage.layout, with the file name as the API makes it safe (no dot segments, no separators).
SOURCE_URI_PATTERN = (
    r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[a-z_][a-z0-9_]*/[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"/[a-z0-9]([-a-z0-9]*[a-z0-9])?/[A-Za-z0-9][A-Za-z0-9._-]*$"
)
# ...and an upload of this run: its dataset and upload id segments are the spec's. The CRD checks the same
# in CEL (its rule builds this regex from the two fields), the operator again with the install's bucket.
SOURCE_OF_THE_RUN_MESSAGE = "source.uri must be this run's upload: s3://<bucket>/<dataset>/<date>/<uploadId>/<file>"
# Any S3 object: the rule of earlier versions, all that a stored run's source is held to when it is read.
S3_URI_PATTERN = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+$"
_STORED = "stored"  # validation context of from_body


class IngestEngineName(StrEnum):
    BUILTIN = "builtin"  # Python/Arrow inside the operator
    NIFI = "nifi"  # the NiFi flow, driven over REST


class TransformEngineName(StrEnum):
    ARROW = "arrow"  # PyIceberg/Arrow inside the operator
    SPARK = "spark"  # bronze_transform.py: a SparkApplication, or spark-submit locally


class Source(K8sModel):
    uri: str = Field(pattern=S3_URI_PATTERN, max_length=1024)  # a new run's: IngestionRunSpec checks more
    format: SourceFormat
    size_bytes: int | None = Field(default=None, ge=0, alias="sizeBytes")
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    filename: str | None = Field(default=None, max_length=255)


class Engines(K8sModel):
    ingest: IngestEngineName | None = None
    transform: TransformEngineName | None = None


class Target(K8sModel):
    namespace: str | None = Field(default=None, pattern=DATASET_NAME_PATTERN, max_length=DATASET_NAME_MAX_LENGTH)
    table: str | None = Field(default=None, pattern=DATASET_NAME_PATTERN, max_length=DATASET_NAME_MAX_LENGTH)


class IngestionRunSpec(K8sModel):
    upload_id: str = Field(pattern=UPLOAD_ID_PATTERN, max_length=UPLOAD_ID_MAX_LENGTH, alias="uploadId")
    dataset: str = Field(pattern=DATASET_NAME_PATTERN, max_length=DATASET_NAME_MAX_LENGTH)
    source: Source
    engines: Engines | None = None
    target: Target | None = None

    @model_validator(mode="after")
    def _source_is_the_runs_upload(self, info: ValidationInfo) -> IngestionRunSpec:
        if (info.context or {}).get(_STORED):
            return self  # the API server admitted it under the CRD of its day; it stays readable
        uri = self.source.uri
        if re.fullmatch(SOURCE_URI_PATTERN, uri) is None or not is_upload_of(uri, self.dataset, self.upload_id):
            raise ValueError(SOURCE_OF_THE_RUN_MESSAGE)
        return self

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> IngestionRunSpec:
        """The spec of a stored run (the rules of new runs are the CRD's and the operator's to enforce)."""
        return cls.model_validate(body["spec"], context={_STORED: True})


def is_dataset_name(value: str) -> bool:
    return len(value) <= DATASET_NAME_MAX_LENGTH and re.fullmatch(DATASET_NAME_PATTERN, value) is not None


def is_upload_of(uri: str, dataset: str, upload_id: str) -> bool:
    """Whether `uri` (already of SOURCE_URI_PATTERN's shape) is an upload of this dataset and upload id."""
    segments = uri.removeprefix("s3://").split("/")
    return len(segments) == 5 and segments[1] == dataset and segments[3] == upload_id


def ingestion_run(spec: IngestionRunSpec, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """The IngestionRun to create: named after its upload, so a retry collides (409) instead of
    starting a second run."""
    metadata: dict[str, Any] = {"name": spec.upload_id}
    if labels:
        metadata["labels"] = dict(labels)
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec.to_k8s()}
