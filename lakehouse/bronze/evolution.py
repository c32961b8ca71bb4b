"""Bringing an existing bronze table to its contract's current shape, in one Iceberg transaction.

Contracts change: a column is added, a decimal widened, monthly partitions become daily. Iceberg
evolves a table in place (old files keep their schema and partition spec, new files use the new
ones), so the table is changed rather than recreated:
- columns the contract adds are added as optional (rows written before have no value for them);
- columns the contract drops, or no longer requires, become optional (new rows have no value for them);
- types change only where Iceberg can promote them (int -> long, float -> double, decimal precision up);
- the partition spec and the sort order follow the contract's `bronze.partitioning` and `sort_by`.
Columns the contract drops stay in the table (their history is data too), never required again.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyiceberg.partitioning import PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.table.sorting import SortOrder
from pyiceberg.types import DecimalType, DoubleType, FloatType, IcebergType, IntegerType, LongType

from lakehouse.contracts.arrow_schema import bronze_iceberg_schema, bronze_partition_spec, bronze_sort_order
from lakehouse.contracts.model import DatasetContract


class IncompatibleContractError(ValueError):
    """The contract changed a column in a way the existing table cannot follow."""


@dataclass(frozen=True)
class Evolution:
    added_columns: list[str]
    promoted_columns: list[str]
    relaxed_columns: list[str]  # required before, optional now
    partitioning_changed: bool
    sort_order_changed: bool

    @property
    def changed(self) -> bool:
        return bool(
            self.added_columns
            or self.promoted_columns
            or self.relaxed_columns
            or self.partitioning_changed
            or self.sort_order_changed
        )


def evolve_to_contract(table: Table, contract: DatasetContract) -> Evolution:
    """Changes the table when it differs from the contract; a no-op (no commit) when it does not."""
    wanted = bronze_iceberg_schema(contract)
    current = table.schema()
    added = [field for field in wanted.fields if _field_or_none(current, field.name) is None]
    promoted = _promoted_fields(table, contract, wanted)
    wanted_required = {field.name: field.required for field in wanted.fields}
    relaxed = [field.name for field in current.fields if field.required and not wanted_required.get(field.name, False)]

    # The spec and sort order are derived against the schema as it will be after the columns change.
    future = _future_schema(current, added)
    wanted_spec = bronze_partition_spec(contract, future)
    wanted_order = bronze_sort_order(contract, future)
    spec_changed = _spec_key(table.spec(), current) != _spec_key(wanted_spec, future)
    order_changed = _order_key(table.sort_order(), current) != _order_key(wanted_order, future)
    evolution = Evolution([f.name for f in added], [f.name for f in promoted], relaxed, spec_changed, order_changed)
    if not evolution.changed:
        return evolution

    with table.transaction() as transaction:
        if added or promoted or relaxed:
            with transaction.update_schema() as update:
                for name in relaxed:
                    update.make_column_optional(name)
                for field in added:
                    update.add_column(field.name, field.field_type, doc=field.doc, required=False)
                for field in promoted:
                    update.update_column(field.name, field_type=field.field_type)
        if spec_changed:
            with transaction.update_spec() as update:
                for old in table.spec().fields:
                    update.remove_field(old.name)
                for new in wanted_spec.fields:
                    update.add_field(future.find_column_name(new.source_id), new.transform, new.name)
        if order_changed:
            with transaction.update_sort_order() as update:
                for sort_field in wanted_order.fields:
                    update.asc(future.find_column_name(sort_field.source_id), sort_field.transform)
    return evolution


def _promoted_fields(table: Table, contract: DatasetContract, wanted: Schema) -> list:
    """Fields whose type the contract changed, all of them promotions Iceberg allows (or an error)."""
    promoted = []
    for field in wanted.fields:
        existing = _field_or_none(table.schema(), field.name)
        if existing is None or existing.field_type == field.field_type:
            continue
        # The table is already wider (a newer contract, e.g. a Dataset changed while this run was under way,
        # promoted it): the run's narrower values fit, and evolution never goes back.
        if _can_promote(field.field_type, existing.field_type):
            continue
        if not _can_promote(existing.field_type, field.field_type):
            raise IncompatibleContractError(
                f"{'.'.join(table.name())}.{field.name} is {existing.field_type}, the {contract.name} contract "
                f"now says {field.field_type}, and Iceberg cannot change one into the other; keep the type, "
                "or point the contract at a new table"
            )
        promoted.append(field)
    return promoted


def _field_or_none(schema: Schema, name: str):
    try:
        return schema.find_field(name, case_sensitive=True)
    except ValueError:
        return None


def _future_schema(current: Schema, added: list) -> Schema:
    """The current schema plus the added columns, with ids above the current ones (as Iceberg assigns)."""
    next_id = current.highest_field_id
    fields = list(current.fields)
    for field in added:
        next_id += 1
        fields.append(field.model_copy(update={"field_id": next_id, "required": False}))
    return Schema(*fields, schema_id=current.schema_id)


def _spec_key(spec: PartitionSpec, schema: Schema) -> list[tuple[str, str]]:
    return [(schema.find_column_name(f.source_id) or "", str(f.transform)) for f in spec.fields]


def _order_key(order: SortOrder, schema: Schema) -> list[tuple[str, str, str]]:
    return [(schema.find_column_name(f.source_id) or "", str(f.transform), str(f.direction)) for f in order.fields]


def _can_promote(old: IcebergType, new: IcebergType) -> bool:
    if isinstance(old, IntegerType) and isinstance(new, LongType):
        return True
    if isinstance(old, FloatType) and isinstance(new, DoubleType):
        return True
    return (
        isinstance(old, DecimalType)
        and isinstance(new, DecimalType)
        and (old.scale == new.scale and new.precision >= old.precision)
    )
