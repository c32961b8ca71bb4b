"""The built-in ingest engine's work, free of Kubernetes: upload in S3 -> raw/ and quarantine/."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from lakehouse.contracts.model import DatasetContract
from lakehouse.ingest.readers import SourceFormat, read_source
from lakehouse.ingest.validation import ValidationResult, validate
from lakehouse.storage.s3 import S3Location, read_object, write_parquet

UPLOAD_ID_COLUMN = "_upload_id"


@dataclass(frozen=True)
class IngestPaths:
    raw: S3Location
    quarantine: S3Location

    @classmethod
    def for_run(
        cls, dataset: str, processing_date: dt.date, upload_id: str, raw_bucket: str, quarantine_bucket: str
    ) -> IngestPaths:
        key = f"{dataset}/{processing_date.isoformat()}/{upload_id}.parquet"
        return cls(S3Location(raw_bucket, key), S3Location(quarantine_bucket, key))


class ChecksumMismatchError(ValueError):
    pass


@dataclass(frozen=True)
class IngestReport:
    result: ValidationResult
    bytes_in: int


def ingest_upload(
    s3: Any,
    contract: DatasetContract,
    source: S3Location,
    source_format: SourceFormat,
    upload_id: str,
    paths: IngestPaths,
    expected_sha256: str | None = None,
) -> IngestReport:
    """Reads, validates and writes; rewriting the same paths on a retry is harmless."""
    data = read_object(s3, source)
    if expected_sha256:
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected_sha256:
            raise ChecksumMismatchError(f"{source.uri} has sha256 {actual}, but the upload recorded {expected_sha256}")
    result = validate(contract, read_source(data, source_format))
    metadata = {"upload-id": upload_id, "dataset": contract.name, "contract-version": str(contract.version)}
    write_parquet(s3, paths.raw, result.valid, metadata | {"rows": str(result.valid.num_rows)})
    if result.rejected.num_rows:
        rejected = result.rejected.append_column(
            UPLOAD_ID_COLUMN, pa.array([upload_id] * result.rejected.num_rows, pa.string())
        )
        write_parquet(s3, paths.quarantine, rejected, metadata | {"rows": str(rejected.num_rows)})
    return IngestReport(result=result, bytes_in=len(data))
