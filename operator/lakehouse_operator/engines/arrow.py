"""Transform inside the operator process: raw Parquet -> bronze rows -> PyIceberg append.

The fast path for small files; large ones go to Spark. Like the Spark job, it trusts raw/'s rows and
checks only its schema (lakehouse.bronze.transform).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyiceberg.catalog import Catalog

from lakehouse.bronze.evolution import IncompatibleContractError
from lakehouse.bronze.transform import RawSchemaMismatchError, RunStamp, to_bronze
from lakehouse.bronze.writer import append_exactly_once
from lakehouse.storage.s3 import S3Location, read_parquet
from lakehouse_operator.engines.base import RunContext, RunRejectedError, TransformEngine, TransformOutcome


class ArrowTransformEngine(TransformEngine):
    def __init__(self, s3: Any, catalog: Callable[[], Catalog]) -> None:
        self._s3 = s3
        self._catalog = catalog

    def transform(self, run: RunContext, raw_uri: str) -> TransformOutcome:
        raw = read_parquet(self._s3, S3Location.parse(raw_uri))
        try:
            bronze = to_bronze(run.contract, raw, RunStamp(run.upload_id, run.processing_date, run.ingest_timestamp))
        except RawSchemaMismatchError as error:
            raise RunRejectedError("RawSchemaMismatch", str(error)) from error
        try:
            result = append_exactly_once(
                self._catalog(),
                run.contract,
                bronze,
                run_id=run.name,
                upload_id=run.upload_id,
                identifier=run.target_table,
            )
        except IncompatibleContractError as error:
            raise RunRejectedError("IncompatibleContract", str(error)) from error
        return TransformOutcome(table=result.table, snapshot_id=result.snapshot_id, rows_written=result.rows_written)
