"""A dataset contract inferred from a sample file, for a person to review (`lakehouse dataset infer`).

The file is read as the ingest reads it (every value as text, in batches of bounded size), and each column
keeps the types all of its values fit, its null markers and whether any value is missing. What comes out is
a contract that loads: names that are not identifiers and names of audit columns are renamed, a date or
timestamp column becomes the bronze date column, and the table is partitioned by its month.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from lakehouse.contracts.model import AUDIT_COLUMNS, IDENTIFIER, Column, DatasetContract, audit_rename
from lakehouse.ingest.readers import SourceBatches

# Texts that stand for a missing value in common exports (R, pandas, MySQL, PostgreSQL's COPY, Excel).
NULL_MARKER_CANDIDATES = ("NA", "N/A", "NULL", "null", "\\N", "None", "NaN", "#N/A")
# Tried in this order: the first type every value of a column fits is its type.
_TYPE_ORDER = ("boolean", "long", "double", "date", "timestamp")
_BOOLEAN_TEXT = ["true", "false", "TRUE", "FALSE", "True", "False"]
_LONG = r"^-?\d{1,18}$"
_LEADING_ZERO = r"^-?0\d"  # an identifier such as a postcode, whose zeros a number would lose
_DOUBLE = r"^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$"
_ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"
_ISO_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}(:?\d{2})?)?$"
# Other ways of writing dates and timestamps, tried when ISO 8601 does not fit; the first that fits is taken.
DATE_FORMATS = ("%d/%m/%Y", "%m/%d/%Y", "%Y/%m/%d", "%d.%m.%Y")
TIMESTAMP_FORMATS = ("%d/%m/%Y %H:%M:%S", "%m/%d/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%m/%d/%Y %H:%M")
_DATE_WORDS = re.compile(r"date|time|day|_at$|_on$|created|updated")


@dataclass
class _ColumnEvidence:
    """What the sample showed of one column so far."""

    name: str
    rows: int = 0
    missing: int = 0
    markers: Counter[str] = field(default_factory=Counter)
    # type -> the formats still possible (None: ISO 8601 or the type's one way of writing)
    fits: dict[str, list[str | None]] = field(
        default_factory=lambda: {
            "boolean": [None],
            "long": [None],
            "double": [None],
            "date": [None, *DATE_FORMATS],
            "timestamp": [None, *TIMESTAMP_FORMATS],
        }
    )

    def add(self, text: pa.Array) -> None:
        self.rows += len(text)
        text = pc.utf8_trim_whitespace(text)
        marker = pc.is_in(text, value_set=pa.array(NULL_MARKER_CANDIDATES))
        for value, count in Counter(pc.filter(text, marker).to_pylist()).items():
            self.markers[value] += count
        values = pc.filter(text, pc.and_(pc.invert(pc.fill_null(marker, False)), pc.not_equal(text, "")))
        self.missing += len(text) - len(values)
        if not len(values):
            return
        for kind in list(self.fits):
            self.fits[kind] = [f for f in self.fits[kind] if _all_fit(values, kind, f)]
            if not self.fits[kind]:
                del self.fits[kind]

    @property
    def type(self) -> str:
        seen = self.rows - self.missing
        return next((kind for kind in _TYPE_ORDER if kind in self.fits), "string") if seen else "string"

    @property
    def format(self) -> str | None:
        return self.fits[self.type][0] if self.type in ("date", "timestamp") else None


def _all_fit(values: pa.Array, kind: str, value_format: str | None) -> bool:
    def every(mask: pa.Array) -> bool:
        return bool(pc.all(pc.fill_null(mask, False)).as_py())

    if kind == "boolean":
        return every(pc.is_in(values, value_set=pa.array(_BOOLEAN_TEXT)))
    if kind in ("long", "double"):
        leading_zero = pc.any(pc.match_substring_regex(values, _LEADING_ZERO)).as_py()
        return not leading_zero and every(pc.match_substring_regex(values, _LONG if kind == "long" else _DOUBLE))
    if value_format is None:
        return every(pc.match_substring_regex(values, _ISO_DATE if kind == "date" else _ISO_TIMESTAMP))
    parsed = pc.strptime(values, format=value_format, unit="s", error_is_null=True)
    return every(pc.is_valid(parsed))


def target_name(name: str) -> str | None:
    """The rename a file's column needs to be a bronze column: an identifier that is not an audit column."""
    identifier = name if re.match(IDENTIFIER, name) else re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")
    if not identifier or identifier[0].isdigit():
        identifier = f"column_{identifier}"
    if identifier in AUDIT_COLUMNS:
        identifier = audit_rename(identifier)
    return identifier if identifier != name else None


def infer_contract(
    opened: SourceBatches, *, name: str, source_system: str, delimiter: str = ",", namespace: str = "bronze"
) -> tuple[DatasetContract, int]:
    """The contract the sample fits, and the number of rows it was inferred from."""
    evidence = {column: _ColumnEvidence(column) for column in opened.columns}
    rows = 0
    for batch in opened.batches:
        rows += batch.table.num_rows
        for column, seen in evidence.items():
            if column in batch.table.column_names:
                seen.add(batch.table.column(column).combine_chunks())
            else:  # JSON lines: a key this batch's lines lack
                seen.rows += batch.table.num_rows
                seen.missing += batch.table.num_rows
    null_markers = sorted({m for seen in evidence.values() if seen.type != "string" for m in seen.markers})
    columns = [_column(seen, rows) for seen in evidence.values()]
    date_column = _date_column(columns)
    document: dict[str, Any] = {
        "name": name,
        "version": 1,
        "description": f"Inferred by `lakehouse dataset infer` from {rows} rows; review before use.",
        "source_system": source_system,
        "columns": [c.model_dump(exclude_defaults=True) for c in columns],
    }
    if null_markers:
        document["null_markers"] = null_markers
    if delimiter != ",":
        document["csv"] = {"delimiter": delimiter}
    bronze: dict[str, Any] = {"namespace": namespace, "table": name}
    if date_column:
        bronze |= {"date_column": date_column, "partitioning": [{"column": date_column, "transform": "month"}]}
        bronze["sort_by"] = [date_column]
    document["bronze"] = bronze
    return DatasetContract.model_validate(document), rows


def _column(seen: _ColumnEvidence, rows: int) -> Column:
    return Column(
        name=seen.name,
        type=seen.type,
        required=bool(rows) and seen.missing == 0,
        rename=target_name(seen.name),
        format=seen.format,
    )


def _date_column(columns: list[Column]) -> str | None:
    """A required date or timestamp column, the one whose name says it is a date first."""
    candidates = [c for c in columns if c.type in ("date", "timestamp")]
    candidates.sort(key=lambda c: (not c.required, not _DATE_WORDS.search(c.target_name.lower())))
    return candidates[0].target_name if candidates else None


def guess_delimiter(header: str) -> str:
    """The separator a CSV header line uses most."""
    counts = {d: header.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","
