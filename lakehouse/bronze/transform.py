"""Raw rows to bronze rows: the contract's columns plus the lineage and audit columns.

What raw/ guarantees, and what every transform engine (this Arrow one and the Spark job's
lakehouse.bronze.spark_frame) relies on: raw/ is written only by the ingest stage's contract validator
(lakehouse.ingest.validation, which the built-in and the NiFi ingest engines both run). So its columns
are the contract's raw schema (renamed, typed), every row passed every check, and each rejected row is
already in quarantine/ with its original text and reasons. The transform engines trust the rows and do
not check them again: no second quarantine, no second set of data-quality counts. They only check the
file's schema (check_raw_schema, metadata only): a file that is not the validator's output for this
contract (an upload passed as raw/, a contract changed since the ingest) fails the run instead of
writing bronze rows nobody validated.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lakehouse.contracts.arrow_schema import TIMESTAMP, bronze_arrow_schema, raw_schema
from lakehouse.contracts.model import DatasetContract

# Rows of one streamed chunk (to_bronze_chunks): each is sorted and written on its own, so it bounds the memory
# (about 130 bytes a bronze orders row, its sort's copy of the contract's columns, and the data files' encoding)
# and each chunk makes one data file per partition it holds. bench/large_upload.py --chunk-rows: at 1.8 M orders
# rows the transform peaked ~310 MiB above the process's imports with 250,000, ~430 MiB with 1,000,000.
CHUNK_ROWS = 500_000
READ_BATCH_ROWS = 128 * 1024


class RawSchemaMismatchError(ValueError):
    """The file is not raw/ as the contract's validator writes it."""


def check_raw_schema(contract: DatasetContract, found: pa.Schema) -> None:
    """Every contract column under its renamed name with its type; nullability is not compared (Spark
    reads every Parquet column as nullable) and other columns are ignored."""
    problems = []
    for expected in raw_schema(contract):
        index = found.get_field_index(expected.name)
        if index < 0:
            problems.append(f"{expected.name} is missing")
        elif found.field(index).type != expected.type:
            problems.append(f"{expected.name} is {found.field(index).type}, not {expected.type}")
    if problems:
        raise RawSchemaMismatchError(
            f"the raw file does not have the {contract.name} contract's raw schema ({'; '.join(problems)}): "
            "it was not written by this contract's validator; ingest the upload again"
        )


@dataclass(frozen=True)
class RunStamp:
    """What a run stamps on each of its rows; fixed per run so a retry writes the same values."""

    upload_id: str
    processing_date: dt.date
    ingest_timestamp: dt.datetime  # naive UTC


def to_bronze(contract: DatasetContract, raw: pa.Table, stamp: RunStamp) -> pa.Table:
    """The bronze rows of `raw`, sorted by the contract's sort_by."""
    check_raw_schema(contract, raw.schema)
    return _bronze_rows(contract, raw, stamp)


def to_bronze_chunks(
    contract: DatasetContract, raw: pq.ParquetFile, stamp: RunStamp, chunk_rows: int = CHUNK_ROWS
) -> Iterator[pa.Table]:
    """The bronze rows of a raw file, about `chunk_rows` at a time, each chunk sorted on its own: memory is a
    chunk's, whatever the file's size. Only the contract's columns are read, a row group after another."""
    check_raw_schema(contract, raw.schema_arrow)
    names = raw_schema(contract).names
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    # One row group at a time: a file opened with pre_buffer would otherwise read all its row groups at once.
    batches = (
        batch
        for group in range(raw.num_row_groups)
        for batch in raw.iter_batches(batch_size=min(chunk_rows, READ_BATCH_ROWS), row_groups=[group], columns=names)
    )
    for batch in batches:
        pending.append(batch)
        pending_rows += batch.num_rows
        if pending_rows >= chunk_rows:
            yield _bronze_rows(contract, pa.Table.from_batches(pending), stamp)
            pending, pending_rows = [], 0
    if pending:
        yield _bronze_rows(contract, pa.Table.from_batches(pending), stamp)


def _bronze_rows(contract: DatasetContract, raw: pa.Table, stamp: RunStamp) -> pa.Table:
    rows = raw.num_rows
    raw = raw.select(raw_schema(contract).names).cast(raw_schema(contract))
    sort_by = contract.bronze.sort_by
    # Sorted while the rows are the contract's few columns, before the run's constant columns (most of a bronze
    # row's bytes) are added: a third of the memory and time of sorting the bronze rows. A sort key that is an
    # audit column exists only once they are added, so such a contract sorts the bronze rows instead.
    sort_raw_first = all(name in raw.column_names for name in sort_by)
    if sort_by and sort_raw_first:
        raw = _sorted(raw, sort_by)

    def constant(value: object, type_: pa.DataType) -> pa.Array:
        # Built in C: a Python list of one value per row cost ~3 s at 1.5 M rows (bench/end_to_end.py).
        return pa.repeat(pa.scalar(value, type_), rows)

    if contract.bronze.date_column:
        event_date = raw.column(contract.bronze.date_column)
    else:
        event_date = constant(stamp.processing_date, pa.date32())

    extra = {
        "processing_date": constant(stamp.processing_date, pa.date32()),
        "ingest_timestamp": constant(stamp.ingest_timestamp, TIMESTAMP),
        "data_version": constant(contract.data_version, pa.string()),
        "source_system": constant(contract.source_system, pa.string()),
        "year": pc.year(event_date).cast(pa.int32()),
        "month": pc.month(event_date).cast(pa.int32()),
        "day": pc.day(event_date).cast(pa.int32()),
        "updated_at": constant(stamp.ingest_timestamp, TIMESTAMP),
        "upload_id": constant(stamp.upload_id, pa.string()),
    }
    schema = bronze_arrow_schema(contract)
    arrays = [raw.column(f.name) if f.name in raw.column_names else extra[f.name] for f in schema]
    bronze = pa.Table.from_arrays(arrays, schema=schema)
    return bronze if sort_raw_first else _sorted(bronze, sort_by)


def _sorted(rows: pa.Table, sort_by: list[str]) -> pa.Table:
    """Ascending with nulls first: the order the table's sort order (bronze_sort_order) declares, which the data
    files claim by its id."""
    return rows.sort_by([(name, "ascending", "at_start") for name in sort_by])
