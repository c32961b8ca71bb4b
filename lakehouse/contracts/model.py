"""The dataset contract: columns, types, renames, rules and the bronze target of one dataset.

One definition serves every engine: the Arrow engine, the Spark job and NiFi's record schema
are all derived from these models, never written out by hand a second time.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
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
# What each audit column holds, for the error that refuses a contract column of the same name.
AUDIT_COLUMN_MEANINGS: dict[str, str] = {
    "processing_date": "the day the run was transformed",
    "ingest_timestamp": "when the run was transformed",
    "data_version": "the contract's name and version",
    "source_system": "the contract's source_system",
    "year": "the year of bronze.date_column, else of processing_date",
    "month": "the month of bronze.date_column, else of processing_date",
    "day": "the day of bronze.date_column, else of processing_date",
    "updated_at": "when the row was written",
    "upload_id": "the upload the row came from",
}
# A source column named like an audit column keeps its values under this name (see audit_rename).
AUDIT_RENAME_PREFIX = "source_"
# Values of a timestamp column the bronze date column may take its date from.
DATE_COLUMN_TYPES = ("date", "timestamp")

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


NullMarkers = Annotated[
    list[str],
    Field(
        max_length=32,
        description="Texts that mean 'no value' (for example NA, NULL, \\N), besides the empty field, "
        "which always does. Compared with the value after surrounding spaces are trimmed, case-sensitively.",
    ),
]
TimeZoneName = Annotated[
    str,
    Field(
        min_length=1,
        description="An IANA time zone (Europe/Paris): timestamps written without an offset are local times "
        "there, converted to UTC. Timestamps with an offset are converted from it, whatever this says.",
    ),
]


def _known_zone(value: str | None) -> str | None:
    if value is not None:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}: use an IANA name such as UTC or Europe/Paris") from None
    return value


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
    null_markers: Annotated[
        NullMarkers | None,
        Field(description="This column's null markers, in place of the dataset's null_markers ([] for none)."),
    ] = None
    format: Annotated[
        str | None,
        Field(
            min_length=1,
            description="How a date or timestamp column writes its values, in strptime codes "
            "(%d/%m/%Y, %Y-%m-%d %H:%M:%S%z); default ISO 8601.",
        ),
    ] = None
    timezone: Annotated[
        TimeZoneName | None, Field(description="This timestamp column's zone, in place of the dataset's timezone.")
    ] = None

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        return _known_zone(value)

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

    @model_validator(mode="after")
    def _format_fits_type(self) -> Column:
        if self.format is not None:
            if self.type not in DATE_COLUMN_TYPES:
                raise ValueError(f"column {self.name!r}: format applies to date and timestamp columns only")
            _check_format(self.name, self.format, self.type)
        if self.timezone is not None and self.type != "timestamp":
            raise ValueError(f"column {self.name!r}: timezone applies to timestamp columns only")
        return self

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


class CsvDialect(_Strict):
    """How a dataset's CSV files are written. JSON lines and Parquet files ignore it."""

    delimiter: Annotated[str, Field(min_length=1, max_length=1, description="The field separator.")] = ","
    quote: Annotated[
        str | None,
        Field(min_length=1, max_length=1, description="The quote character; null: fields are never quoted."),
    ] = '"'
    escape: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=1,
            description='A character that makes the next one literal (\\"); null: a quote inside a quoted '
            "field is written twice.",
        ),
    ] = None
    header: Annotated[
        bool,
        Field(description="Whether the first line names the columns; false: the columns are the contract's, in order."),
    ] = True
    header_trim: Annotated[
        bool, Field(description="Match header names to the contract with surrounding spaces removed.")
    ] = False
    header_ignore_case: Annotated[
        bool, Field(description="Match header names to the contract whatever their upper and lower case.")
    ] = False

    @model_validator(mode="after")
    def _distinct(self) -> CsvDialect:
        special = [c for c in (self.delimiter, self.quote, self.escape) if c is not None]
        if len(set(special)) != len(special):
            raise ValueError("csv: delimiter, quote and escape must be different characters")
        if {self.delimiter, self.quote} & {"\r", "\n"}:
            raise ValueError("csv: a line break cannot be the delimiter or the quote")
        return self


class Compaction(_Strict):
    enabled: bool = Field(default=True, description="Whether small data files are bin-packed into larger ones.")
    target_file_size_mb: int = Field(
        default=128, ge=1, description="Size (MiB of Parquet) of the files compaction writes; smaller files qualify."
    )
    min_input_files: int = Field(
        default=5, ge=2, description="A partition is compacted once it holds at least this many small files."
    )
    spark_threshold_mb: int | None = Field(
        default=None,
        ge=0,
        description="A Spark job compacts the table when more than this many MiB are to be rewritten (PyIceberg "
        "below it); unset: the operator's LAKEHOUSE_COMPACTION_SPARK_THRESHOLD_BYTES (chart "
        "operator.maintenance.sparkThresholdBytes).",
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
    # The one limit on rejected rows: the alert LakehouseRejectRatioHigh (charts/lakehouse/files/
    # prometheus-rules.yaml) compares an hour's rejects with it, and with enforce_max_reject_ratio a run does.
    max_reject_ratio: Annotated[
        float,
        Field(
            ge=0,
            le=1,
            description="Share of input rows that may be rejected: an hour above it fires an alert, and a run "
            "above it fails when enforce_max_reject_ratio is true.",
        ),
    ] = 0.05
    enforce_max_reject_ratio: Annotated[
        bool,
        Field(
            description="Fail a run (reason TooManyRejects, nothing written) whose rejected share of rows is "
            "above max_reject_ratio; false: such a run succeeds and only the alert says so."
        ),
    ] = False
    max_file_bytes: Annotated[
        int | None,
        Field(
            ge=1,
            description="Largest upload accepted, in bytes: the API refuses a larger one (413) and the "
            "operator fails its run (FileTooLarge); null: the install's limit only.",
        ),
    ] = None
    null_markers: NullMarkers = []
    timezone: Annotated[TimeZoneName | None, Field(description="The zone of every naive timestamp column.")] = None
    csv: Annotated[CsvDialect, Field(description="How the dataset's CSV files are written.")] = CsvDialect()
    bronze: Annotated[BronzeTarget, Field(description="The bronze table.")]
    maintenance: TableMaintenance = Field(
        default_factory=TableMaintenance, description="Scheduled compaction, snapshot expiry and orphan file removal."
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        return _known_zone(value)

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
        for column in self.columns:
            if column.target_name in AUDIT_COLUMNS:
                raise ValueError(audit_collision_message(column.target_name))
        for rule in self.rules:
            if rule.column not in targets:
                raise ValueError(f"rule {rule.name!r} checks unknown column {rule.column!r}")
            _check_rule_value(rule, self.column(rule.column))
        bronze_columns = set(targets) | set(AUDIT_COLUMNS)
        for name in [p.column for p in self.bronze.partitioning] + self.bronze.sort_by:
            if name not in bronze_columns:
                raise ValueError(f"bronze partition/sort column {name!r} is not a column")
        date_column = self.bronze.date_column
        if date_column and (date_column not in targets or self.column(date_column).type not in DATE_COLUMN_TYPES):
            raise ValueError(f"bronze.date_column {date_column!r} must be a date or timestamp column")
        return self

    def null_markers_of(self, column: Column) -> list[str]:
        return self.null_markers if column.null_markers is None else column.null_markers

    def timezone_of(self, column: Column) -> str | None:
        return column.timezone or self.timezone


def audit_rename(name: str) -> str:
    """The name a source column called like an audit column keeps its values under."""
    return f"{AUDIT_RENAME_PREFIX}{name}"


def audit_collision_message(name: str) -> str:
    return (
        f"column {name!r} has the name of the bronze audit column {name!r} ({AUDIT_COLUMN_MEANINGS[name]}), "
        f"which the bronze layer adds to every row; keep the file's column under another name with "
        f"`rename: {audit_rename(name)}` (docs/contracts.md#audit-columns)"
    )


def _check_format(name: str, value: str, column_type: str) -> None:
    """A format must print a value it can read back, else no value of the file could match it."""
    sample = dt.datetime(2001, 2, 3, 4, 5, 6, tzinfo=dt.UTC)
    try:
        parsed = dt.datetime.strptime(sample.strftime(value), value)
    except ValueError as error:
        raise ValueError(f"column {name!r}: format {value!r} cannot read what it writes ({error})") from None
    if column_type == "date" and parsed.date() != sample.date():
        raise ValueError(f"column {name!r}: format {value!r} must hold the year, month and day")


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
