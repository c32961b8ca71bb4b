"""Transform inside the operator process: raw Parquet -> bronze rows -> PyIceberg append.

A raw file of up to CHUNK_ROWS rows becomes one table of bronze rows in memory, written as data files when it is
committed. A larger one streams: read row group by row group, its bronze rows built, sorted and written as data
files a chunk at a time, then committed in one snapshot like any run, so memory is bounded by the chunk, not the
file. Like the Spark job, it trusts raw/'s rows and checks only its schema (lakehouse.bronze.transform). Each run
prepares its rows in its own handler thread; runs of one table that are ready while a commit to it is under way
are appended together in the next (group_commit.py), unless `group_max_runs` is 1.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import requests
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import (
    CommitFailedException,
    CommitStateUnknownException,
    ServerError,
    ServiceUnavailableError,
    TooManyRequestsError,
)
from pyiceberg.manifest import DataFile

from lakehouse.bronze.evolution import IncompatibleContractError
from lakehouse.bronze.transform import (
    CHUNK_ROWS,
    RawSchemaMismatchError,
    RunStamp,
    check_raw_schema,
    to_bronze,
    to_bronze_chunks,
)
from lakehouse.bronze.writer import (
    AppendResult,
    BronzeFiles,
    RunRows,
    append_exactly_once,
    append_group_exactly_once,
    ensure_table,
    find_run_snapshot,
    write_data_files,
)
from lakehouse.contracts.model import DatasetContract
from lakehouse.k8s.ingestionrun.reasons import FailureReason
from lakehouse.storage.s3 import S3Location
from lakehouse.storage.streams import open_parquet
from lakehouse_operator.engines.base import RunContext, RunRejectedError, TransformEngine, TransformOutcome
from lakehouse_operator.faults import crash_point, pause_point
from lakehouse_operator.group_commit import GroupCommitter
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


@contextlib.contextmanager
def _failures_of(run: RunContext) -> Iterator[None]:
    """A file or contract that cannot be written as the run's failure (never retried); a server's fault counted
    (lakehouse_iceberg_commit_retries_total) and left to the stage's retries."""
    try:
        yield
    except RawSchemaMismatchError as error:
        raise RunRejectedError(FailureReason.RAW_SCHEMA_MISMATCH, str(error)) from error
    except IncompatibleContractError as error:
        raise RunRejectedError(FailureReason.INCOMPATIBLE_CONTRACT, str(error)) from error
    except Exception as error:
        if cause := commit_retry_cause(error):
            ICEBERG_COMMIT_RETRIES.labels(run.dataset, cause).inc()
        raise


@dataclass(frozen=True)
class _Member:
    run: RunContext
    rows: RunRows


# A group commit's runs share their table and their contract (as it was when they read it).
GroupKey = tuple[str, str]


class ArrowTransformEngine(TransformEngine):
    runs_in_process = True

    def __init__(
        self, s3: Any, catalog: Callable[[], Catalog], group_max_runs: int = 1, chunk_rows: int = CHUNK_ROWS
    ) -> None:
        self._s3 = s3
        self._catalog = catalog
        self._chunk_rows = chunk_rows
        self._group_max_runs = group_max_runs
        self._groups: GroupCommitter[GroupKey, _Member, AppendResult] = GroupCommitter(
            self._commit_group, group_max_runs
        )

    def transform(self, run: RunContext, raw_uri: str) -> TransformOutcome:
        raw = open_parquet(self._s3, S3Location.parse(raw_uri))
        stamp = RunStamp(run.upload_id, run.processing_date, run.ingest_timestamp)
        with _failures_of(run):
            if raw.metadata.num_rows <= self._chunk_rows:
                bronze: pa.Table | BronzeFiles = to_bronze(run.contract, raw.read(), stamp)
            else:
                bronze = self._write_chunks(run, raw, stamp)
        member = _Member(run, RunRows(run.name, run.upload_id, bronze))
        pause_point("transform.rows-ready", run.name)
        with _failures_of(run):
            if self._group_max_runs > 1:
                result = self._groups.submit((run.target_table, run.contract.model_dump_json()), member)
            else:
                result = self._commit_alone(member)
        return TransformOutcome(table=result.table, snapshot_id=result.snapshot_id, rows_written=result.rows_written)

    def _write_chunks(self, run: RunContext, raw: pq.ParquetFile, stamp: RunStamp) -> BronzeFiles:
        """A large raw file's bronze rows as data files, a chunk at a time (memory is a chunk's), committed after
        like any run's rows. A retry whose run is committed already writes nothing: the commit finds its snapshot."""
        check_raw_schema(run.contract, raw.schema_arrow)  # before the table is made: a refused file leaves none
        table = ensure_table(self._catalog(), run.contract, run.target_table)
        if find_run_snapshot(table, run.name) is not None:
            return BronzeFiles((), 0)
        files: list[DataFile] = []
        rows = 0
        for chunk in to_bronze_chunks(run.contract, raw, stamp, self._chunk_rows):
            files += write_data_files(table, chunk)
            rows += chunk.num_rows
        return BronzeFiles(tuple(files), rows, table.metadata.default_spec_id)

    def _commit_alone(self, member: _Member) -> AppendResult:
        run = member.run
        return append_exactly_once(
            self._catalog(),
            run.contract,
            member.rows.rows,
            run_id=run.name,
            upload_id=run.upload_id,
            identifier=run.target_table,
            before_commit=lambda: pause_point("transform.before-commit", run.name),
            on_conflict=ICEBERG_COMMIT_RETRIES.labels(run.dataset, "conflict").inc,
        )

    def _commit_group(self, key: GroupKey, members: Sequence[_Member]) -> list[AppendResult]:
        first = members[0].run
        contract: DatasetContract = first.contract
        results = append_group_exactly_once(
            self._catalog(),
            contract,
            [member.rows for member in members],
            identifier=key[0],
            before_commit=lambda run_id: pause_point("transform.before-commit", run_id),
            on_conflict=ICEBERG_COMMIT_RETRIES.labels(first.dataset, "conflict").inc,
        )
        if len(members) > 1:
            crash_point("transform.after-group-commit", "group")
        return [results[member.run.name] for member in members]
