"""Spark types derived from the contract's Arrow schemas, so Spark writes what PyIceberg writes.

The Arrow schemas (lakehouse.contracts.arrow_schema) stay the single definition; this module only
translates them. Arrow's timestamp without zone is Iceberg's `timestamp`, which Spark 3.4+ reads and
writes as TIMESTAMP_NTZ.
"""

from __future__ import annotations

import pyarrow as pa
from pyspark.sql import types as st

from lakehouse.contracts.arrow_schema import arrow_type
from lakehouse.contracts.model import Column


def spark_type_of(arrow: pa.DataType) -> st.DataType:
    if pa.types.is_decimal(arrow):
        return st.DecimalType(arrow.precision, arrow.scale)
    if pa.types.is_timestamp(arrow):
        if arrow.tz is not None:
            raise TypeError(f"contracts use timestamps without zone, not {arrow}")
        return st.TimestampNTZType()
    simple: dict[pa.DataType, st.DataType] = {
        pa.string(): st.StringType(),
        pa.int64(): st.LongType(),
        pa.int32(): st.IntegerType(),
        pa.float64(): st.DoubleType(),
        pa.bool_(): st.BooleanType(),
        pa.date32(): st.DateType(),
    }
    try:
        return simple[arrow]
    except KeyError:
        raise TypeError(f"no Spark type for Arrow type {arrow}") from None


def spark_type(column: Column) -> st.DataType:
    return spark_type_of(arrow_type(column))


def spark_schema(schema: pa.Schema) -> st.StructType:
    return st.StructType(
        [st.StructField(field.name, spark_type_of(field.type), nullable=field.nullable) for field in schema]
    )
