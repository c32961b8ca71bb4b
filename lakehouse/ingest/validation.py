"""Validating source rows against a dataset contract, vectorised with Arrow.

Each value is typed on its own, so a bad value rejects its row, never the file. Every
rejected row keeps its original text and the list of reasons. The same checks produce the
data-quality counts recorded for the run.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lakehouse.contracts.arrow_schema import arrow_type, raw_schema
from lakehouse.contracts.model import RULE_SYMBOLS, Column, DatasetContract, Rule, rule_value_as
from lakehouse.ingest.errors import MissingColumnsError, UnsupportedTypeError, WrongDelimiterError
from lakehouse.ingest.readers import ROW_NUMBER, SourceTable

REJECT_REASON = "_reject_reason"
RAW_RECORD = "_raw_record"

_INTEGER_PATTERNS = {"long": r"^-?\d{1,18}$", "int": r"^-?\d{1,10}$"}
_DOUBLE_PATTERN = r"^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$"
_DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])  # index 0: no month
BOOLEAN_TEXT = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}
# Field separators files are written with; a header of one column holding the contract's names split by one
# of these (not the contract's own) was written with it.
_OTHER_DELIMITERS = (",", ";", "\t", "|")
_SHOWN_CHARACTERS = 200


def required_reason(column: Column) -> str:
    return f"{column.target_name}: required value is missing"


def invalid_value_reason_parts(column: Column) -> tuple[str, str]:
    """Text before and after the offending value's repr; every engine builds the reason from these."""
    return f"{column.target_name}: ", f" is not a valid {column.type}"


def rule_reason_parts(rule: Rule, column: Column) -> tuple[str, str]:
    """Text before and after the offending value as written in the file."""
    return f"{rule.name}: {column.target_name} {RULE_SYMBOLS[rule.op]} {rule.value} failed (value ", ")"


@dataclass(frozen=True)
class CheckResult:
    check_name: str
    column: str
    passed: int
    failed: int


@dataclass(frozen=True)
class ValidationResult:
    valid: pa.Table
    rejected: pa.Table
    checks: list[CheckResult]

    @property
    def input_rows(self) -> int:
        return self.valid.num_rows + self.rejected.num_rows


def check_columns(contract: DatasetContract, found: list[str], unsupported: dict[str, str]) -> None:
    """Whether a file with these columns can be ingested at all: known from its header, before any row."""
    _check_types(contract, unsupported)
    missing = [name for name in contract.required_source_columns if name not in found]
    if missing:
        raise _missing_columns_error(contract, missing, found)


def validate(contract: DatasetContract, source: SourceTable) -> ValidationResult:
    table = source.table
    check_columns(contract, [name for name in table.column_names if name != ROW_NUMBER], source.unsupported_columns)

    failures: list[tuple[np.ndarray, str, Column, Rule | None]] = []
    typed: dict[str, pa.Array] = {}
    checks: list[CheckResult] = []
    for column in contract.columns:
        text = _text_column(table, column.name, contract.null_markers_of(column))
        values, invalid = _parse(text, column, contract.timezone_of(column))
        marked = source.invalid_values.get(column.name)
        if marked is not None and marked.any():
            invalid |= marked
            values = pc.if_else(pa.array(marked), pa.scalar(None, values.type), values)
        typed[column.target_name] = values
        nulls = ~_mask(pc.is_valid(values)) & ~invalid
        checks.append(CheckResult("not_null", column.target_name, len(text) - int(nulls.sum()), int(nulls.sum())))
        checks.append(
            CheckResult(f"type_{column.type}", column.target_name, len(text) - int(invalid.sum()), int(invalid.sum()))
        )
        failures.append((invalid, "type", column, None))
        if column.required:
            failures.append((nulls, "required", column, None))

    for rule in contract.rules:
        column = contract.column(rule.column)
        values = typed[rule.column]
        failed = _mask(pc.is_valid(values)) & ~_mask(_rule_holds(rule, column, values))
        evaluated = int(_mask(pc.is_valid(values)).sum())
        checks.append(CheckResult(rule.name, rule.column, evaluated - int(failed.sum()), int(failed.sum())))
        failures.append((failed, "rule", column, rule))

    bad = np.zeros(table.num_rows, dtype=bool)
    for mask, *_ in failures:
        bad |= mask
    reasons = _reasons(table, failures, bad)

    valid = pa.Table.from_arrays(
        [typed[field.name].filter(pa.array(~bad)) for field in raw_schema(contract)],
        schema=raw_schema(contract),
    )
    rejected = _rejected_rows(table, bad, reasons, source.unparseable)
    checks.insert(0, CheckResult("row_count", "", valid.num_rows, rejected.num_rows))
    return ValidationResult(valid=valid, rejected=rejected, checks=checks)


def _check_types(contract: DatasetContract, unsupported: dict[str, str]) -> None:
    wanted = [column for column in contract.columns if column.name in unsupported]
    if wanted:
        described = "; ".join(
            f"column {c.name!r} is {unsupported[c.name]} in the file, the contract wants {c.type}" for c in wanted
        )
        raise UnsupportedTypeError(
            f"{described}; no value of such a column can be read: write it as a plain column of the contract's type",
            wanted[0].name,
        )


def _missing_columns_error(contract: DatasetContract, missing: list[str], found: list[str]) -> MissingColumnsError:
    """The error for a header that lacks required columns, with what the header probably meant."""
    if len(found) == 1:
        for delimiter in [d for d in _OTHER_DELIMITERS if d != contract.csv.delimiter]:
            names = [name.strip() for name in found[0].split(delimiter)]
            if len(names) > 1 and any(name in names for name in missing):
                return WrongDelimiterError(
                    f"the header is one column, {found[0]!r}: the file separates its fields with {delimiter!r}; "
                    f"the {contract.name} contract's CSV files separate them with {contract.csv.delimiter!r} "
                    "(its csv.delimiter): export with that, or declare the file's delimiter in the contract",
                    missing,
                )
    hints = []
    for name in missing:
        column = next(c for c in contract.columns if c.name == name)
        near = [f for f in found if f.strip().lower() == name.lower()]
        if column.rename and column.rename in found:
            hints.append(f"{column.rename!r} is what the contract renames {name!r} to; the file must call it {name!r}")
        elif near:
            hints.append(f"{near[0]!r} differs from {name!r} in case or spaces")
    return MissingColumnsError(
        f"the file lacks required column(s) {', '.join(missing)}; found columns: {', '.join(found) or 'none'}"
        + (f" ({'; '.join(hints)})" if hints else "")
        + f"; fix the file's header to match the {contract.name} contract",
        missing,
    )


def _text_column(table: pa.Table, name: str, null_markers: list[str] | None = None) -> pa.Array:
    if name not in table.column_names:  # optional column absent from the file
        return pa.nulls(table.num_rows, pa.string())
    text = pc.utf8_trim_whitespace(table.column(name).combine_chunks())
    # An empty field means "no value", whatever the format; so does any of the contract's null markers.
    no_value = pc.is_in(text, value_set=pa.array(["", *(null_markers or [])], pa.string()))
    return pc.if_else(no_value, pa.scalar(None, pa.string()), text)


def _mask(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean Arrow array as numpy, nulls counted as False."""
    return np.asarray(pc.fill_null(values, False).to_numpy(zero_copy_only=False), dtype=bool)


def _parse(text: pa.Array, column: Column, timezone: str | None = None) -> tuple[pa.Array, np.ndarray]:
    """Typed values (null where absent or invalid) and the mask of present-but-invalid values."""
    target = arrow_type(column)
    present = _mask(pc.is_valid(text))
    if column.type == "string":
        # A NUL byte is never text: the API refuses a file with one in its first 64 KiB, this any later one.
        nul = present & _mask(pc.match_substring(text, "\x00"))
        return pc.if_else(pa.array(nul), pa.scalar(None, pa.string()), text), nul
    if column.type == "boolean":
        lowered = pc.utf8_lower(text)
        ok = _mask(pc.is_in(lowered, value_set=pa.array(list(BOOLEAN_TEXT))))
        values = pa.array([BOOLEAN_TEXT.get(v) if v is not None else None for v in lowered.to_pylist()], pa.bool_())
        return pc.if_else(pa.array(ok), values, pa.scalar(None, pa.bool_())), present & ~ok
    if column.type == "timestamp":
        return _parse_timestamps(text, present, column.format, timezone)
    if column.type == "date" and column.format:
        return _parse_formatted_dates(text, present, column.format)

    pattern = value_pattern(column)
    ok = _mask(pc.match_substring_regex(text, pattern))
    candidates = pc.if_else(pa.array(ok), text, pa.scalar(None, pa.string()))
    if column.type == "date":
        values, real = _iso_dates(candidates)
        ok &= real
    elif column.type == "int":
        wide = candidates.cast(pa.int64())
        ok &= _mask(pc.and_(pc.greater_equal(wide, -(2**31)), pc.less(wide, 2**31)))
        values = pc.if_else(pa.array(ok), wide, pa.scalar(None, pa.int64())).cast(pa.int32())
    else:
        values = candidates.cast(target)
    values = pc.if_else(pa.array(ok), values, pa.scalar(None, target))
    return values, present & ~ok


def _iso_dates(candidates: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Dates of values shaped YYYY-MM-DD (or null), and which are real days (not 30 February; a null counts as
    one: the caller's mask has it already).

    A column of real days only (the usual one) is cast at once: Arrow's cast checks each day, and refuses the
    whole column for one impossible day. Such a column is checked on the numbers instead, for the whole column at
    once (printing parsed dates back with strftime to compare took 1.6 s per 1.5 M values)."""
    try:
        return candidates.cast(pa.date32()), np.ones(len(candidates), dtype=bool)  # 1.6 ms per 200,000, not 19
    except pa.ArrowInvalid:
        pass
    parts = [
        _integers_or_zero(pc.utf8_slice_codeunits(candidates, start, stop).cast(pa.int32()))
        for start, stop in ((0, 4), (5, 7), (8, 10))
    ]
    year, month, day = parts
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    days_in_month = _DAYS_IN_MONTH[np.clip(month, 0, 12)] + (leap & (month == 2))
    real = (month >= 1) & (month <= 12) & (day >= 1) & (day <= days_in_month)
    values = pc.if_else(pa.array(real), candidates, pa.scalar(None, pa.string())).cast(pa.date32())
    return values, real


def _integers_or_zero(values: pa.Array) -> np.ndarray:
    """An integer Arrow array as numpy, nulls as 0."""
    return np.asarray(pc.fill_null(values, 0).to_numpy(zero_copy_only=False))


def value_pattern(column: Column) -> str:
    if column.type in _INTEGER_PATTERNS:
        return _INTEGER_PATTERNS[column.type]
    if column.type == "double":
        return _DOUBLE_PATTERN
    if column.type == "date":
        return _DATE_PATTERN
    precision, scale = column.decimal_precision_scale or (0, 0)
    integer_digits = max(precision - scale, 1)
    fraction = rf"(\.\d{{1,{scale}}})?" if scale else ""
    return rf"^-?\d{{1,{integer_digits}}}{fraction}$"


def _parse_timestamps(
    text: pa.Array, present: np.ndarray, value_format: str | None, timezone: str | None
) -> tuple[pa.Array, np.ndarray]:
    """ISO 8601 (or the column's format), with or without an offset; offsets are normalised to UTC, and a value
    without one is a local time of the contract's timezone when it names one (else UTC already). Per value."""
    zone = zoneinfo.ZoneInfo(timezone) if timezone else None
    values: list[dt.datetime | None] = []
    for raw in text.to_pylist():
        try:
            if raw is None:
                parsed = None
            elif value_format:
                parsed = dt.datetime.strptime(raw, value_format)
            else:
                parsed = dt.datetime.fromisoformat(raw)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is None and zone is not None:
            parsed = parsed.replace(tzinfo=zone)
        if parsed is not None and parsed.tzinfo is not None:
            parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
        values.append(parsed)
    array = pa.array(values, pa.timestamp("us"))
    return array, present & ~_mask(pc.is_valid(array))


def _parse_formatted_dates(text: pa.Array, present: np.ndarray, value_format: str) -> tuple[pa.Array, np.ndarray]:
    """Dates in the column's strptime format, per value (Python's strptime refuses 30 February)."""
    values: list[dt.date | None] = []
    for raw in text.to_pylist():
        try:
            values.append(dt.datetime.strptime(raw, value_format).date() if raw is not None else None)
        except ValueError:
            values.append(None)
    array = pa.array(values, pa.date32())
    return array, present & ~_mask(pc.is_valid(array))


def _rule_holds(rule: Rule, column: Column, values: pa.Array) -> pa.Array:
    if rule.op == "matches":
        return pc.match_substring_regex(values, str(rule.value))
    target = arrow_type(column)
    if rule.op == "in":
        allowed = [rule_value_as(column, v) for v in rule.value]  # type: ignore[union-attr]
        return pc.is_in(values, value_set=pa.array(allowed, target))
    literal = pa.scalar(rule_value_as(column, rule.value), target)
    compare = {
        "gt": pc.greater,
        "ge": pc.greater_equal,
        "lt": pc.less,
        "le": pc.less_equal,
        "eq": pc.equal,
        "ne": pc.not_equal,
    }[rule.op]
    return compare(values, literal)


def _reasons(
    table: pa.Table, failures: list[tuple[np.ndarray, str, Column, Rule | None]], bad: np.ndarray
) -> dict[int, list[str]]:
    """Row index -> human-readable reasons, built only for the rejected rows."""
    reasons: dict[int, list[str]] = defaultdict(list)
    for mask, kind, column, rule in failures:
        rows = np.nonzero(mask)[0]
        if not len(rows):
            continue
        source_values = _text_column(table, column.name).take(pa.array(rows)).to_pylist()
        for row, value in zip(rows.tolist(), source_values, strict=True):
            if kind == "required":
                reasons[row].append(required_reason(column))
            elif kind == "type":
                before, after = invalid_value_reason_parts(column)
                reasons[row].append(f"{before}{_shown(value, quoted=True)}{after}")
            else:
                assert rule is not None
                before, after = rule_reason_parts(rule, column)
                reasons[row].append(f"{before}{_shown(value, quoted=False)}{after}")
    return reasons


def _shown(value: str | None, *, quoted: bool) -> str:
    """A value as a reason quotes it. The whole value stays in the row's own column, so a field of
    megabytes is cut short here instead of being copied into its reason."""
    text = value or ""
    if len(text) <= _SHOWN_CHARACTERS:
        return repr(value) if quoted else str(value)
    start = text[:_SHOWN_CHARACTERS]
    return f"{start!r}... ({len(text)} characters)" if quoted else f"{start}... ({len(text)} characters)"


def _rejected_rows(
    table: pa.Table, bad: np.ndarray, reasons: dict[int, list[str]], unparseable: list[tuple[int, str, str]]
) -> pa.Table:
    """Rejected rows as text, as they were in the file, with their row number and reasons."""
    source_columns = [name for name in table.column_names if name != ROW_NUMBER]
    rows = np.nonzero(bad)[0]
    picked = table.take(pa.array(rows, pa.int64()))
    columns = {name: picked.column(name).cast(pa.string()) for name in source_columns}
    row_numbers = picked.column(ROW_NUMBER).to_pylist()
    raw_records: list[str | None] = [None] * len(rows)
    messages = ["; ".join(reasons[row]) for row in rows.tolist()]

    if unparseable:  # their values are in _raw_record only
        for name in source_columns:
            columns[name] = pa.concat_arrays([columns[name].combine_chunks(), pa.nulls(len(unparseable), pa.string())])
    for row_number, raw_text, reason in unparseable:
        row_numbers.append(row_number)
        raw_records.append(raw_text)
        messages.append(reason)

    rejected = pa.table(
        {
            ROW_NUMBER: pa.array(row_numbers, pa.int64()),
            **{name: columns[name] for name in source_columns},
            RAW_RECORD: pa.array(raw_records, pa.string()),
            REJECT_REASON: pa.array(messages, pa.string()),
        }
    )
    return rejected.sort_by(ROW_NUMBER)
