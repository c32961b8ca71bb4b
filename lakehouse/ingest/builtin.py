"""The built-in ingest engine's work, free of Kubernetes: upload in S3 -> raw/ and quarantine/."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from lakehouse.contracts.model import DatasetContract
from lakehouse.formats import SourceFormat
from lakehouse.ingest.errors import ChecksumMismatchError, InputError, UnsupportedInputError
from lakehouse.ingest.readers import read_source
from lakehouse.ingest.validation import ValidationResult, validate
from lakehouse.storage.layout import IngestPaths
from lakehouse.storage.s3 import S3Location, read_object, write_parquet

UPLOAD_ID_COLUMN = "_upload_id"


@dataclass(frozen=True)
class IngestReport:
    result: ValidationResult
    bytes_in: int


@dataclass(frozen=True)
class IngestFiles:
    """What one upload becomes: the raw rows, the rejected rows (None when all are valid), their
    object metadata, and the report. Every engine that runs this code writes the same files."""

    report: IngestReport
    raw: pa.Table
    quarantine: pa.Table | None
    metadata: dict[str, str]


def ingest_bytes(
    contract: DatasetContract,
    data: bytes,
    source_format: SourceFormat,
    upload_id: str,
    source_uri: str,
    expected_sha256: str | None = None,
) -> IngestFiles:
    """Checks, reads and validates an upload's bytes; pure, so the NiFi step shares it.

    Raises an InputError for a file that cannot be ingested: any error here comes from the bytes alone,
    so the same bytes fail the same way on every attempt and no engine retries it.
    """
    if expected_sha256:
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected_sha256:
            raise ChecksumMismatchError(
                f"{source_uri} has sha256 {actual}, but the upload recorded {expected_sha256}; "
                "the object changed after upload: upload the file again"
            )
    try:
        result = validate(contract, read_source(data, source_format))
    except (InputError, MemoryError):
        raise
    except Exception as error:
        raise UnsupportedInputError(
            f"the file could not be read ({type(error).__name__}: {error}); the ingest does not handle "
            "this kind of file yet: report it with the file"
        ) from error
    metadata = {"upload-id": upload_id, "dataset": contract.name, "contract-version": str(contract.version)}
    quarantine = None
    if result.rejected.num_rows:
        quarantine = result.rejected.append_column(
            UPLOAD_ID_COLUMN, pa.array([upload_id] * result.rejected.num_rows, pa.string())
        )
    return IngestFiles(IngestReport(result=result, bytes_in=len(data)), result.valid, quarantine, metadata)


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
    files = ingest_bytes(contract, data, source_format, upload_id, source.uri, expected_sha256)
    write_parquet(s3, paths.raw, files.raw, files.metadata | {"rows": str(files.raw.num_rows)})
    if files.quarantine is not None:
        write_parquet(s3, paths.quarantine, files.quarantine, files.metadata | {"rows": str(files.quarantine.num_rows)})
    return files.report
