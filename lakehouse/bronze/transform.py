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
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from lakehouse.contracts.arrow_schema import TIMESTAMP, bronze_arrow_schema, raw_schema
from lakehouse.contracts.model import DatasetContract


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
    check_raw_schema(contract, raw.schema)
    rows = raw.num_rows
    raw = raw.select(raw_schema(contract).names).cast(raw_schema(contract))

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
    table = pa.Table.from_arrays(arrays, schema=schema)
    if contract.bronze.sort_by:
        table = table.sort_by([(name, "ascending") for name in contract.bronze.sort_by])
    return table
