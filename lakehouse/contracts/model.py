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
# Bounds that let the Dataset CRD's CEL rules (lakehouse/k8s/dataset/crd.py) be costed, and keep contracts sane.
MAX_COLUMNS = 300
MAX_RULES = 200
MAX_NAME_LENGTH = 128
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
    """A column of the source file: its type, whether it must have a value, and its name in raw and bronze."""

    name: Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH, description="Column name in the source file.")]
    type: Annotated[str, Field(description="string, long, int, double, boolean, date, timestamp or decimal(P,S).")]
    required: Annotated[bool, Field(description="A row without a value here is quarantined.")] = False
    rename: Annotated[
        str | None,
        Field(pattern=IDENTIFIER, max_length=MAX_NAME_LENGTH, description="Name in raw and bronze (default: name)."),
    ] = None
    description: Annotated[str, Field(description="Free text, shown by the API.")] = ""

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
    """A row rule: a row that breaks it is quarantined with the rule's name."""

    name: Annotated[
        str, Field(pattern=IDENTIFIER, max_length=MAX_NAME_LENGTH, description="Named in quarantine reasons.")
    ]
    column: str = Field(max_length=MAX_NAME_LENGTH, description="Target (renamed) column the rule checks.")
    op: Annotated[RuleOp, Field(description="gt, ge, lt, le, eq, ne, in (a list) or matches (a regex).")]
    value: Annotated[
        str | int | float | bool | list[str | int | float],
        Field(description="Literal of the column's type; a list for in, a regex for matches."),
    ]

    def describe(self) -> str:
        return f"{self.column} {RULE_SYMBOLS[self.op]} {self.value}"


class PartitionField(_Strict):
    """One field of the bronze table's partition spec."""

    column: Annotated[str, Field(max_length=MAX_NAME_LENGTH, description="A bronze column (audit columns too).")]
    transform: Annotated[
        Literal["identity", "year", "month", "day"], Field(description="Iceberg partition transform.")
    ] = "identity"


class BronzeTarget(_Strict):
    """The bronze Iceberg table the dataset's rows land in."""

    namespace: Annotated[str, Field(pattern=IDENTIFIER, max_length=MAX_NAME_LENGTH, description="Iceberg namespace.")]
    table: Annotated[str, Field(pattern=IDENTIFIER, max_length=MAX_NAME_LENGTH, description="Table in the namespace.")]
    partitioning: Annotated[
        list[PartitionField], Field(max_length=16, description="Partition spec, in order (default: none).")
    ] = []
    sort_by: Annotated[
        list[Annotated[str, Field(max_length=MAX_NAME_LENGTH)]],
        Field(max_length=16, description="Sort order of written files: bronze columns, ascending."),
    ] = []
    date_column: Annotated[
        str | None,
        Field(
            max_length=MAX_NAME_LENGTH,
            description="Date column that sets year, month and day (default: processing_date).",
        ),
    ] = None

    @property
    def identifier(self) -> str:
        return f"{self.namespace}.{self.table}"


class DatasetContract(_Strict):
    name: Annotated[
        str,
        Field(
            pattern=DATASET_NAME_PATTERN,
            max_length=DATASET_NAME_MAX_LENGTH,
            description="The dataset's name; uploads and runs name it.",
        ),
    ]
    version: Annotated[int, Field(ge=1, description="Raise it with every change; rows carry <name>-v<version>.")]
    description: Annotated[str, Field(description="Free text, shown by the API.")] = ""
    source_system: Annotated[str, Field(description="Written to every bronze row's source_system.")]
    columns: Annotated[
        list[Column],
        Field(min_length=1, max_length=MAX_COLUMNS, description="The file's columns (others are dropped)."),
    ]
    rules: Annotated[list[Rule], Field(max_length=MAX_RULES, description="Row rules, checked at ingest.")] = []
    # Only watched, never enforced: a run with more rejects still succeeds, and the alert
    # LakehouseRejectRatioHigh (charts/lakehouse/files/prometheus-rules.yaml) fires.
    max_reject_ratio: Annotated[
        float, Field(ge=0, le=1, description="Share of input rows that may be rejected before an alert fires.")
    ] = 0.05
    bronze: Annotated[BronzeTarget, Field(description="The bronze table.")]

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
