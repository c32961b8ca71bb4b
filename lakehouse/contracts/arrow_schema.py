"""Arrow and Iceberg schemas derived from a dataset contract."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

from lakehouse.contracts.model import AUDIT_COLUMNS, Column, DatasetContract

# PyIceberg's table modules take half a second to import; the ingest path (and NiFi's step, a new
# process per file) needs only the Arrow schemas, so the Iceberg ones import it when called.
if TYPE_CHECKING:
    from pyiceberg.partitioning import PartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.table.sorting import SortOrder

TIMESTAMP = pa.timestamp("us")
_PRIMITIVES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "long": pa.int64(),
    "int": pa.int32(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": TIMESTAMP,
}
# Lineage and audit columns appended to every bronze table, after the contract's own columns.
BRONZE_EXTRA_FIELDS: tuple[pa.Field, ...] = tuple(
    pa.field(name, _PRIMITIVES[type_], nullable=not required) for name, (type_, required) in AUDIT_COLUMNS.items()
)


def arrow_type(column: Column) -> pa.DataType:
    if precision_scale := column.decimal_precision_scale:
        return pa.decimal128(*precision_scale)
    return _PRIMITIVES[column.type]


def raw_schema(contract: DatasetContract) -> pa.Schema:
    """Valid rows as the ingest stage writes them to raw/: typed, renamed contract columns."""
    return pa.schema([pa.field(c.target_name, arrow_type(c), nullable=not c.required) for c in contract.columns])


def bronze_arrow_schema(contract: DatasetContract) -> pa.Schema:
    return pa.schema(list(raw_schema(contract)) + list(BRONZE_EXTRA_FIELDS))


def bronze_iceberg_schema(contract: DatasetContract) -> Schema:
    """Field ids are assigned in column order, so the same contract always gives the same ids."""
    from pyiceberg.io.pyarrow import pyarrow_to_schema

    arrow = bronze_arrow_schema(contract)
    with_ids = pa.schema(
        [f.with_metadata({b"PARQUET:field_id": str(i).encode()}) for i, f in enumerate(arrow, start=1)]
    )
    return pyarrow_to_schema(with_ids)


def bronze_partition_spec(contract: DatasetContract, schema: Schema) -> PartitionSpec:
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.transforms import DayTransform, IdentityTransform, MonthTransform, YearTransform

    kinds = {"identity": IdentityTransform, "year": YearTransform, "month": MonthTransform, "day": DayTransform}
    fields = []
    for field_id, partition in enumerate(contract.bronze.partitioning, start=1000):
        source = schema.find_field(partition.column)
        name = partition.column if partition.transform == "identity" else f"{partition.column}_{partition.transform}"
        fields.append(
            PartitionField(
                source_id=source.field_id,
                field_id=field_id,
                transform=kinds[partition.transform](),
                name=name,
            )
        )
    return PartitionSpec(*fields)


def bronze_sort_order(contract: DatasetContract, schema: Schema) -> SortOrder:
    from pyiceberg.table.sorting import SortField, SortOrder
    from pyiceberg.transforms import IdentityTransform

    return SortOrder(
        *[
            SortField(source_id=schema.find_field(name).field_id, transform=IdentityTransform())
            for name in contract.bronze.sort_by
        ]
    )
