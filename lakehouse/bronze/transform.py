"""Raw rows to bronze rows: the contract's columns plus the lineage and audit columns."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from lakehouse.contracts.arrow_schema import TIMESTAMP, bronze_arrow_schema, raw_schema
from lakehouse.contracts.model import DatasetContract


@dataclass(frozen=True)
class RunStamp:
    """What a run stamps on each of its rows; fixed per run so a retry writes the same values."""

    upload_id: str
    processing_date: dt.date
    ingest_timestamp: dt.datetime  # naive UTC


def to_bronze(contract: DatasetContract, raw: pa.Table, stamp: RunStamp) -> pa.Table:
    rows = raw.num_rows
    raw = raw.select(raw_schema(contract).names).cast(raw_schema(contract))
    if contract.bronze.date_column:
        event_date = raw.column(contract.bronze.date_column)
    else:
        event_date = pa.array([stamp.processing_date] * rows, pa.date32())

    def constant(value: object, type_: pa.DataType) -> pa.Array:
        return pa.array([value] * rows, type_)

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
