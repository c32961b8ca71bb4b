"""The dataset contract: columns, types, renames, rules and the bronze target of one dataset.

One definition serves every engine: the Arrow engine, the Spark job and NiFi's record schema
are all derived from these models, never written out by hand a second time.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lakehouse.k8s.ingestionrun.spec import DATASET_NAME_MAX_LENGTH, DATASET_NAME_PATTERN

DECIMAL_TYPE = re.compile(r"^decimal\((\d{1,2}),(\d{1,2})\)$")
PRIMITIVE_TYPES = ("string", "long", "int", "double", "boolean", "date", "timestamp")
IDENTIFIER = r"^[a-z_][a-z0-9_]*$"
# The lineage and audit columns the bronze layer appends to every table, in order, as
# name -> (type, required). A contract may not declare them itself. Every engine derives them from here.
AUDIT_COLUMNS: dict[str, tuple[str, bool]] = {
    "processing_date": ("date", True),
    "ingest_timestamp": ("timestamp", True),
    "data_version": ("string", True),
    "source_system": ("string", True),
    "year": ("int", False),  # of the event date (bronze.date_column), else of processing_date
    "month": ("int", False),
    "day": ("int", False),
    "updated_at": ("timestamp", True),
    "upload_id": ("string", True),
}

RuleOp = Literal["gt", "ge", "lt", "le", "eq", "ne", "in", "matches"]
RULE_SYMBOLS: dict[str, str] = {
    "gt": ">",
    "ge": ">=",
    "lt": "<",
    "le": "<=",
    "eq": "==",
    "ne": "!=",
    "in": "in",
    "matches": "matches",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Column(_Strict):
    name: Annotated[str, Field(min_length=1, description="Column name in the source file.")]
    type: str
    required: bool = False
    rename: Annotated[str | None, Field(pattern=IDENTIFIER)] = None
    description: str = ""

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        value = value.strip().lower().replace(" ", "")
        if value in PRIMITIVE_TYPES:
            return value
        match = DECIMAL_TYPE.match(value)
        if not match or not 0 <= int(match[2]) <= int(match[1]) <= 38:
            raise ValueError(f"unknown type {value!r}: use one of {PRIMITIVE_TYPES} or decimal(P,S)")
        return value

    @property
    def target_name(self) -> str:
        """The column's name after the rename, as raw and bronze data carry it."""
        return self.rename or self.name

    @property
    def decimal_precision_scale(self) -> tuple[int, int] | None:
        match = DECIMAL_TYPE.match(self.type)
        return (int(match[1]), int(match[2])) if match else None


class Rule(_Strict):
    name: Annotated[str, Field(pattern=IDENTIFIER)]
    column: str = Field(description="Target (renamed) column the rule checks.")
    op: RuleOp
    value: str | int | float | bool | list[str | int | float]

    def describe(self) -> str:
        return f"{self.column} {RULE_SYMBOLS[self.op]} {self.value}"


class PartitionField(_Strict):
    column: str
    transform: Literal["identity", "year", "month", "day"] = "identity"


class BronzeTarget(_Strict):
    namespace: Annotated[str, Field(pattern=IDENTIFIER)]
    table: Annotated[str, Field(pattern=IDENTIFIER)]
    partitioning: list[PartitionField] = []
    sort_by: list[str] = []
    date_column: str | None = None

    @property
    def identifier(self) -> str:
        return f"{self.namespace}.{self.table}"


class Compaction(_Strict):
    enabled: bool = Field(default=True, description="Whether small data files are bin-packed into larger ones.")
    target_file_size_mb: int = Field(
        default=128, ge=1, description="Size (MiB of Parquet) of the files compaction writes; smaller files qualify."
    )
    min_input_files: int = Field(
        default=5, ge=2, description="A partition is compacted once it holds at least this many small files."
    )


class SnapshotExpiry(_Strict):
    enabled: bool = Field(default=True, description="Whether old snapshots are removed from the table's history.")
    max_age_hours: int = Field(
        default=168,
        ge=1,
        description="Snapshots older than this are expired (their run ids go too: keep it beyond any replay).",
    )
    keep_last: int = Field(default=10, ge=1, description="The newest snapshots of the table kept whatever their age.")


class OrphanFileRemoval(_Strict):
    enabled: bool = Field(
        default=True, description="Whether files under the table's location that no snapshot references are deleted."
    )
    older_than_hours: int = Field(
        default=72, ge=1, description="Only files older than this are deleted, so a commit in flight keeps its files."
    )


class TableMaintenance(_Strict):
    """Scheduled upkeep of the bronze table (lakehouse/maintenance/), by the operator or `lakehouse maintenance`."""

    enabled: bool = Field(default=True, description="Whether the operator maintains the table on a schedule.")
    interval_minutes: int = Field(default=60, ge=1, description="Minutes between two scheduled maintenance runs.")
    compaction: Compaction = Field(default_factory=Compaction, description="Bin-packing of small data files.")
    snapshot_expiry: SnapshotExpiry = Field(default_factory=SnapshotExpiry, description="Removal of old snapshots.")
    orphan_files: OrphanFileRemoval = Field(
        default_factory=OrphanFileRemoval, description="Removal of files no snapshot references."
    )


class DatasetContract(_Strict):
    name: Annotated[str, Field(pattern=DATASET_NAME_PATTERN, max_length=DATASET_NAME_MAX_LENGTH)]
    version: Annotated[int, Field(ge=1)]
    description: str = ""
    source_system: str
    columns: Annotated[list[Column], Field(min_length=1)]
    rules: list[Rule] = []
    # Only watched, never enforced: a run with more rejects still succeeds, and the alert
    # LakehouseRejectRatioHigh (charts/lakehouse/files/prometheus-rules.yaml) fires.
    max_reject_ratio: Annotated[
        float, Field(ge=0, le=1, description="Share of input rows that may be rejected before an alert fires.")
    ] = 0.05
    bronze: BronzeTarget
    maintenance: TableMaintenance = Field(
        default_factory=TableMaintenance, description="Scheduled compaction, snapshot expiry and orphan file removal."
    )

    @property
    def data_version(self) -> str:
        return f"{self.name}-v{self.version}"

    @property
    def required_source_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, target_name: str) -> Column:
        return next(c for c in self.columns if c.target_name == target_name)

    @model_validator(mode="after")
    def _consistent(self) -> DatasetContract:
        targets = [c.target_name for c in self.columns]
        duplicates = {t for t in targets if targets.count(t) > 1}
        if duplicates:
            raise ValueError(f"duplicate column names after renames: {sorted(duplicates)}")
        if reserved := set(targets) & set(AUDIT_COLUMNS):
            raise ValueError(f"columns {sorted(reserved)} are added by the bronze layer; rename them")
        for rule in self.rules:
            if rule.column not in targets:
                raise ValueError(f"rule {rule.name!r} checks unknown column {rule.column!r}")
            _check_rule_value(rule, self.column(rule.column))
        bronze_columns = set(targets) | set(AUDIT_COLUMNS)
        for name in [p.column for p in self.bronze.partitioning] + self.bronze.sort_by:
            if name not in bronze_columns:
                raise ValueError(f"bronze partition/sort column {name!r} is not a column")
        date_column = self.bronze.date_column
        if date_column and (date_column not in targets or self.column(date_column).type != "date"):
            raise ValueError(f"bronze.date_column {date_column!r} must be a date column")
        return self


def _check_rule_value(rule: Rule, column: Column) -> None:
    """Rule values must be comparable with their column, so engines never compare str to int."""
    if rule.op == "matches":
        if column.type != "string" or not isinstance(rule.value, str):
            raise ValueError(f"rule {rule.name!r}: 'matches' needs a string column and a regex")
        re.compile(rule.value)
        return
    values = rule.value if isinstance(rule.value, list) else [rule.value]
    if (rule.op == "in") != isinstance(rule.value, list):
        raise ValueError(f"rule {rule.name!r}: 'in' takes a list, other ops a single value")
    for value in values:
        try:
            rule_value_as(column, value)
        except (ValueError, ArithmeticError) as error:
            raise ValueError(f"rule {rule.name!r}: {value!r} is not a {column.type}") from error


def rule_value_as(column: Column, value: object) -> object:
    """A rule's literal converted to the Python type of its column."""
    if column.type == "date":
        return dt.date.fromisoformat(str(value))
    if column.type == "timestamp":
        return dt.datetime.fromisoformat(str(value))
    if column.decimal_precision_scale:
        return Decimal(str(value))
    if column.type in ("long", "int"):
        if isinstance(value, bool) or int(str(value)) != float(str(value)):
            raise ValueError(value)
        return int(str(value))
    if column.type == "double":
        return float(str(value))
    if column.type == "boolean":
        if not isinstance(value, bool):
            raise ValueError(value)
        return value
    return str(value)
