"""The built-in ingest engine's work, free of Kubernetes: upload in S3 -> raw/ and quarantine/.

The upload is read in batches (`lakehouse.ingest.readers`), the next one while the current one is validated on
its own and written on (`lakehouse.ingest.read_ahead`), so the memory used is a few batches' (the one read ahead,
the one validated, their results), whatever the file's size. Its columns are checked against the contract from the
first bytes (or Parquet's footer) before any row is read, so a file that cannot be ingested fails at once. The raw
and quarantine files become visible only when the whole upload has gone through; a failure leaves neither (nor any
part of them) behind.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import pyarrow as pa

from lakehouse.contracts.model import DatasetContract
from lakehouse.formats import SourceFormat
from lakehouse.ingest.errors import ChecksumMismatchError, InputError, UnsupportedInputError
from lakehouse.ingest.limits import check_file_size, check_reject_ratio
from lakehouse.ingest.read_ahead import read_ahead
from lakehouse.ingest.readers import BLOCK_BYTES, BytesSource, CsvReading, SourceTable, UploadSource, open_batches
from lakehouse.ingest.validation import CheckResult, ValidationResult, check_columns, validate
from lakehouse.storage.layout import IngestPaths
from lakehouse.storage.s3 import ObjectNotFoundError, S3Location
from lakehouse.storage.streams import ObjectSource, ParquetObjectWriter, abort_unfinished_uploads

UPLOAD_ID_COLUMN = "_upload_id"


@dataclass(frozen=True)
class IngestReport:
    input_rows: int
    valid_rows: int
    rejected_rows: int
    checks: list[CheckResult]
    bytes_in: int


class RowsWriter(Protocol):
    """Where a run's raw or quarantine rows go, a batch at a time; seen by readers only once committed."""

    def write(self, table: pa.Table) -> None: ...

    def commit(self) -> None: ...

    def abort(self) -> None: ...


class TablesInMemory:
    """A RowsWriter that keeps the tables (NiFi's step, tests)."""

    def __init__(self) -> None:
        self._tables: list[pa.Table] = []

    def write(self, table: pa.Table) -> None:
        self._tables.append(table)

    def commit(self) -> None:
        pass

    def abort(self) -> None:
        self._tables.clear()

    @property
    def table(self) -> pa.Table | None:
        return pa.concat_tables(self._tables) if self._tables else None


@dataclass(frozen=True)
class IngestFiles:
    """What one upload becomes: the raw rows, the rejected rows (None when all are valid), their
    object metadata, and the report. Every engine that runs this code writes the same files."""

    report: IngestReport
    raw: pa.Table
    quarantine: pa.Table | None
    metadata: dict[str, str]


def object_metadata(contract: DatasetContract, upload_id: str) -> dict[str, str]:
    return {"upload-id": upload_id, "dataset": contract.name, "contract-version": str(contract.version)}


def ingest_bytes(
    contract: DatasetContract,
    data: bytes,
    source_format: SourceFormat,
    upload_id: str,
    source_uri: str,
    expected_sha256: str | None = None,
) -> IngestFiles:
    """Checks, reads and validates an upload held in memory; pure, so the NiFi step shares it.

    Raises an InputError for a file that cannot be ingested: any error here comes from the bytes alone,
    so the same bytes fail the same way on every attempt and no engine retries it.
    """
    raw, quarantine = TablesInMemory(), TablesInMemory()
    report = ingest_source(
        contract, BytesSource(data), source_format, upload_id, source_uri, expected_sha256, raw, quarantine
    )
    assert raw.table is not None
    return IngestFiles(report, raw.table, quarantine.table, object_metadata(contract, upload_id))


def ingest_upload(
    s3: Any,
    contract: DatasetContract,
    source: S3Location,
    source_format: SourceFormat,
    upload_id: str,
    paths: IngestPaths,
    expected_sha256: str | None = None,
) -> IngestReport:
    """Streams an upload in S3 to its raw and quarantine objects; a retry rewrites the same keys."""
    for location in (paths.raw, paths.quarantine):
        abort_unfinished_uploads(s3, location)  # parts of an attempt that was killed
    metadata = object_metadata(contract, upload_id)
    return ingest_source(
        contract,
        ObjectSource(s3, source),
        source_format,
        upload_id,
        source.uri,
        expected_sha256,
        ParquetObjectWriter(s3, paths.raw, metadata),
        ParquetObjectWriter(s3, paths.quarantine, metadata),
    )


def ingest_source(
    contract: DatasetContract,
    source: UploadSource,
    source_format: SourceFormat,
    upload_id: str,
    source_uri: str,
    expected_sha256: str | None,
    raw: RowsWriter,
    quarantine: RowsWriter,
    block_bytes: int = BLOCK_BYTES,
) -> IngestReport:
    """Validates the upload batch by batch into `raw` and `quarantine`, and commits them once all went well
    and within the contract's limits (size first, before a byte is read; the reject ratio at the end).

    A commit that fails (S3 away as it completes a multipart upload) aborts what is not committed yet, so no
    part is left behind; the retried attempt writes both objects again under the same keys."""
    try:
        check_file_size(contract, source.size)
        report = _write_batches(contract, source, source_format, upload_id, raw, quarantine, block_bytes)
        check_reject_ratio(contract, report.input_rows, report.rejected_rows, report.checks)
        if expected_sha256:
            actual = source.sha256()
            if actual != expected_sha256:
                raise ChecksumMismatchError(
                    f"{source_uri} has sha256 {actual}, but the upload recorded {expected_sha256}; "
                    "the object changed after upload: upload the file again"
                )
        raw.commit()
        if report.rejected_rows:
            quarantine.commit()
        else:
            quarantine.abort()  # nothing rejected: no quarantine object, and no upload left open
    except BaseException:
        for writer in (raw, quarantine):
            with contextlib.suppress(Exception):  # the error that stopped the ingest is the one to report
                writer.abort()
        raise
    return report


def _write_batches(
    contract: DatasetContract,
    source: UploadSource,
    source_format: SourceFormat,
    upload_id: str,
    raw: RowsWriter,
    quarantine: RowsWriter,
    block_bytes: int,
) -> IngestReport:
    totals = _Totals()
    quarantine_schema: pa.Schema | None = None
    empty_valid: pa.Table | None = None
    validated = _validated_batches(contract, source, source_format, block_bytes)
    with contextlib.closing(validated):  # an error writing stops the reading thread now, not when collected
        for result in _input_errors_only(source, validated):
            totals.add(result)
            if result.valid.num_rows:
                raw.write(result.valid)
            else:
                empty_valid = result.valid
            if result.rejected.num_rows:
                rejected = result.rejected.append_column(
                    UPLOAD_ID_COLUMN, pa.array([upload_id] * result.rejected.num_rows, pa.string())
                )
                quarantine_schema = quarantine_schema or rejected.schema
                quarantine.write(_conform(rejected, quarantine_schema))
    if not totals.valid_rows and empty_valid is not None:  # raw/ holds a file even when no row is valid
        raw.write(empty_valid)
    return IngestReport(totals.input_rows, totals.valid_rows, totals.rejected_rows, totals.checks(), source.size)


def _validated_batches(
    contract: DatasetContract, source: UploadSource, source_format: SourceFormat, block_bytes: int
) -> Generator[ValidationResult, None, None]:
    opened = open_batches(source, source_format, block_bytes, csv_reading(contract))
    check_columns(contract, opened.columns, opened.unsupported_columns)  # the header alone: fail before any row
    batches = read_ahead(opened.batches, "upload-reader")
    with contextlib.closing(batches):  # an error validating stops the reading thread now, not when collected
        for index, batch in enumerate(batches):
            yield validate(contract, batch if index == 0 else _with_required_columns(contract, batch))


def csv_reading(contract: DatasetContract) -> CsvReading:
    return CsvReading(contract.csv, tuple(column.name for column in contract.columns))


def _with_required_columns(contract: DatasetContract, batch: SourceTable) -> SourceTable:
    """A later batch of JSON lines may lack a key the first ones had: its rows lack the value."""
    table = batch.table
    for name in contract.required_source_columns:
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows, pa.string()))
    return SourceTable(table, batch.unparseable, batch.invalid_values, batch.unsupported_columns)


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """A batch of rejected rows in the quarantine file's columns (JSON lines' keys vary from batch to batch):
    a column the file has not is null; a key first seen after the first rejected batch is left out."""
    if table.schema.equals(schema):
        return table
    columns = [
        table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def _input_errors_only(source: UploadSource, results: Iterator[ValidationResult]) -> Iterator[ValidationResult]:
    """Every error reading or validating the bytes as the InputError it is; the server's faults as they are."""
    while True:
        try:
            result = next(results)
        except StopIteration:
            return
        except (InputError, MemoryError, ObjectNotFoundError):
            raise
        except Exception as error:
            # S3 failed while reading (the readers raise its fault as it is): retried as a server fault. Another
            # error is the file's, even when the batch read ahead met a fault meanwhile.
            if error is source.failure:
                raise
            raise UnsupportedInputError(
                f"the file could not be read ({type(error).__name__}: {error}); the ingest does not handle "
                "this kind of file yet: report it with the file"
            ) from error
        yield result


class _Totals:
    """The counts of all batches: rows, and each check's passed and failed, in the checks' order."""

    def __init__(self) -> None:
        self.valid_rows = self.rejected_rows = 0
        self._checks: dict[tuple[str, str], list[int]] = {}

    @property
    def input_rows(self) -> int:
        return self.valid_rows + self.rejected_rows

    def add(self, result: ValidationResult) -> None:
        self.valid_rows += result.valid.num_rows
        self.rejected_rows += result.rejected.num_rows
        for check in result.checks:
            counts = self._checks.setdefault((check.check_name, check.column), [0, 0])
            counts[0] += check.passed
            counts[1] += check.failed

    def checks(self) -> list[CheckResult]:
        return [CheckResult(name, column, passed, failed) for (name, column), (passed, failed) in self._checks.items()]
