"""Raw rows to bronze rows in Spark: the twin of lakehouse.bronze.transform.to_bronze.

Same columns, types and order (from the contract's bronze Arrow schema), same values, and the same
contract with raw/ (see lakehouse.bronze.transform): the rows are trusted, the schema is checked by the
same function. Only Column expressions, so executors run no Python. Sorting is left to the Iceberg
table's sort order, which Spark applies when it writes.
"""

from __future__ import annotations

import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as sf
from pyspark.sql import types as st
from pyspark.sql.pandas.types import to_arrow_type

from lakehouse.bronze.transform import RunStamp, check_raw_schema
from lakehouse.contracts.arrow_schema import bronze_arrow_schema, raw_schema
from lakehouse.contracts.model import DatasetContract
from lakehouse.contracts.spark_schema import spark_schema

# The job's session: the bronze columns' dates and timestamps are naive UTC.
SESSION_CONF = {"spark.sql.session.timeZone": "UTC"}


def to_bronze_frame(contract: DatasetContract, raw: DataFrame, stamp: RunStamp) -> DataFrame:
    check_raw_schema(contract, _arrow_schema(contract, raw.schema))
    date_column = contract.bronze.date_column
    event_date = sf.col(date_column) if date_column else sf.lit(stamp.processing_date)
    # From text, so the session time zone cannot shift the naive UTC timestamp.
    ingest_timestamp = sf.lit(stamp.ingest_timestamp.isoformat()).cast(st.TimestampNTZType())
    extra = {
        "processing_date": sf.lit(stamp.processing_date),
        "ingest_timestamp": ingest_timestamp,
        "data_version": sf.lit(contract.data_version),
        "source_system": sf.lit(contract.source_system),
        "year": sf.year(event_date),
        "month": sf.month(event_date),
        "day": sf.dayofmonth(event_date),
        "updated_at": ingest_timestamp,
        "upload_id": sf.lit(stamp.upload_id),
    }
    schema = spark_schema(bronze_arrow_schema(contract))
    return raw.select(
        *[
            (sf.col(field.name) if field.name in raw.columns else extra[field.name])
            .cast(field.dataType)
            .alias(field.name)
            for field in schema.fields
        ]
    )


def _arrow_schema(contract: DatasetContract, schema: st.StructType) -> pa.Schema:
    """The contract's columns of a Spark schema in Arrow types (others are not compared, whatever their type)."""
    names = set(raw_schema(contract).names)
    return pa.schema([pa.field(f.name, to_arrow_type(f.dataType)) for f in schema.fields if f.name in names])
