"""Transform inside the operator process: raw Parquet -> bronze rows -> PyIceberg append.

The fast path for small files; large ones go to Spark. Like the Spark job, it trusts raw/'s rows and
checks only its schema (lakehouse.bronze.transform).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import (
    CommitFailedException,
    CommitStateUnknownException,
    ServerError,
    ServiceUnavailableError,
    TooManyRequestsError,
)

from lakehouse.bronze.evolution import IncompatibleContractError
from lakehouse.bronze.transform import RawSchemaMismatchError, RunStamp, to_bronze
from lakehouse.bronze.writer import append_exactly_once
from lakehouse.k8s.ingestionrun.reasons import FailureReason
from lakehouse.storage.s3 import S3Location, read_parquet
from lakehouse_operator.engines.base import RunContext, RunRejectedError, TransformEngine, TransformOutcome
from lakehouse_operator.faults import pause_point
from lakehouse_operator.metrics import ICEBERG_COMMIT_RETRIES

# What a failed commit that the transform stage retries says about the server behind it.
# CommitStateUnknownException: a 5xx answer to the commit itself; the retry looks for the run's snapshot first.
CATALOG_UNAVAILABLE = (
    requests.RequestException,
    CommitStateUnknownException,
    ServerError,
    ServiceUnavailableError,
    TooManyRequestsError,
)
STORAGE_UNAVAILABLE = (OSError,)  # PyArrow's S3 file system, writing the data files


def commit_retry_cause(error: BaseException) -> str | None:
    """The lakehouse_iceberg_commit_retries_total cause of a failed commit, or None for one not retried."""
    if isinstance(error, CommitFailedException):  # still conflicting after the writer's own retries
        return "conflict"
    if isinstance(error, CATALOG_UNAVAILABLE):  # before OSError: requests' errors are OSErrors too
        return "catalog-unavailable"
    if isinstance(error, STORAGE_UNAVAILABLE):
        return "storage-unavailable"
    return None


class ArrowTransformEngine(TransformEngine):
    def __init__(self, s3: Any, catalog: Callable[[], Catalog]) -> None:
        self._s3 = s3
        self._catalog = catalog

    def transform(self, run: RunContext, raw_uri: str) -> TransformOutcome:
        raw = read_parquet(self._s3, S3Location.parse(raw_uri))
        try:
            bronze = to_bronze(run.contract, raw, RunStamp(run.upload_id, run.processing_date, run.ingest_timestamp))
        except RawSchemaMismatchError as error:
            raise RunRejectedError(FailureReason.RAW_SCHEMA_MISMATCH, str(error)) from error
        retries = ICEBERG_COMMIT_RETRIES.labels(run.dataset, "conflict")
        try:
            result = append_exactly_once(
                self._catalog(),
                run.contract,
                bronze,
                run_id=run.name,
                upload_id=run.upload_id,
                identifier=run.target_table,
                before_commit=lambda: pause_point("transform.before-commit", run.name),
                on_conflict=retries.inc,
            )
        except IncompatibleContractError as error:
            raise RunRejectedError(FailureReason.INCOMPATIBLE_CONTRACT, str(error)) from error
        except Exception as error:
            if cause := commit_retry_cause(error):
                ICEBERG_COMMIT_RETRIES.labels(run.dataset, cause).inc()
            raise
        return TransformOutcome(table=result.table, snapshot_id=result.snapshot_id, rows_written=result.rows_written)
