"""Raw rows to bronze rows in Spark: the twin of lakehouse.bronze.transform.to_bronze.

Same columns, types and order (from the contract's bronze Arrow schema), same values. Sorting is
left to the Iceberg table's sort order, which Spark applies when it writes.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as sf
from pyspark.sql import types as st

from lakehouse.bronze.transform import RunStamp
from lakehouse.contracts.arrow_schema import bronze_arrow_schema
from lakehouse.contracts.model import DatasetContract
from lakehouse.contracts.spark_schema import spark_schema


def to_bronze_frame(contract: DatasetContract, raw: DataFrame, stamp: RunStamp) -> DataFrame:
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
