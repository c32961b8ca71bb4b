"""Reading an uploaded file into an all-string Arrow table, losing no row.

Everything is read as text first so that one bad value rejects one row, never the file:
typing happens in validation, value by value. Lines that cannot even be parsed (a CSV row
with the wrong number of fields, a JSON line that is not JSON) are kept with the reason.
What spoils the whole file (text that is not UTF-8, a column named twice, a damaged Parquet
footer) raises an InputError that names the line or column.
"""

from __future__ import annotations

import codecs
import io
import json
import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from lakehouse.formats import SourceFormat
from lakehouse.ingest.errors import (
    DuplicateColumnsError,
    InputError,
    InvalidEncodingError,
    UnreadableSourceError,
)

ROW_NUMBER = "_source_row"
# Arrow parses CSV in blocks (1 MiB by default) and gives up on a row longer than a block.
_ROW_LONGER_THAN_BLOCK = "straddling object"
_MAX_BLOCK_BYTES = 2**31 - 1
# Arrow prints a double in exponent notation from here on, so its text is no longer the file's.
_EXACT_DOUBLE_LIMIT = 1e15


@dataclass
class SourceTable:
    """Rows that parsed (as text, with their 1-based row number) and rows that did not."""

    table: pa.Table
    unparseable: list[tuple[int, str, str]] = field(default_factory=list)  # (row, raw text, reason)
    # By column, the rows whose value no contract type accepts although it has a text (a nested JSON
    # object or array, NaN, Infinity); the text is in `table`, for the quarantine.
    invalid_values: dict[str, np.ndarray] = field(default_factory=dict)
    # Columns whose type has no text at all (Parquet lists, structs, maps), by name, with that type. They
    # are not in `table`; only a contract that wants one of them makes them an error.
    unsupported_columns: dict[str, str] = field(default_factory=dict)


def read_source(data: bytes, source_format: SourceFormat) -> SourceTable:
    readers = {SourceFormat.CSV: _read_csv, SourceFormat.JSON: _read_json_lines, SourceFormat.PARQUET: _read_parquet}
    try:
        return readers[source_format](data)
    except InputError:
        raise
    except UnicodeDecodeError as error:
        raise _not_utf8(data) from error
    except (pa.ArrowInvalid, OSError) as error:
        raise UnreadableSourceError(
            f"cannot read the file as {source_format}: {error}; check the file and its declared format"
        ) from error


def _not_utf8(data: bytes) -> InvalidEncodingError:
    """Where a text file stops being UTF-8 (decoded again, so only ever on the failure path)."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return InvalidEncodingError("the file is UTF-16 text (it starts with a UTF-16 byte order mark); save as UTF-8")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        return InvalidEncodingError(
            f"the file is not UTF-8: byte 0x{data[error.start]:02x} on line {line} is not valid UTF-8 "
            "(Latin-1 or Windows-1252 text?); save the file as UTF-8"
        )
    return InvalidEncodingError("the file is not valid UTF-8 text; save it as UTF-8")


def _check_column_names(names: list[str]) -> None:
    """A name given to two columns makes it ambiguous which one holds the values. Unnamed columns
    (an empty header field, as trailing commas make) are not compared: they are never read."""
    counts = Counter(name for name in names if name.strip())
    duplicated = [name for name, count in counts.items() if count > 1]
    if duplicated:
        places = "; ".join(
            f"{name!r} at positions {', '.join(str(i) for i, n in enumerate(names, start=1) if n == name)}"
            for name in duplicated
        )
        raise DuplicateColumnsError(
            f"the file names a column more than once: {places}; rename or remove the duplicate", duplicated[0]
        )


def _named_columns(table: pa.Table) -> pa.Table:
    return table.select([i for i, name in enumerate(table.column_names) if name.strip()])


class _NoTextError(Exception):
    """A column whose values have no text form; the message describes its type."""


def _as_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    kind = column.type
    if pa.types.is_dictionary(kind):
        return _as_text(column.cast(kind.value_type))
    if pa.types.is_nested(kind):
        raise _NoTextError(f"of type {kind}")
    if pa.types.is_string(kind):
        return column
    if pa.types.is_timestamp(kind):
        return pc.strftime(column, format="%Y-%m-%dT%H:%M:%S")
    try:
        return column.cast(pa.string())
    except pa.ArrowNotImplementedError:
        raise _NoTextError(f"of type {kind}") from None
    except pa.ArrowInvalid:
        raise _NoTextError(f"of type {kind} with bytes that are not UTF-8 text") from None


# --- CSV -----------------------------------------------------------------------------------------


def _read_csv(data: bytes) -> SourceTable:
    column_names = _csv_header(data)
    _check_column_names(column_names)
    block_size = None
    try:
        table, skipped = _parse_csv(data, column_names, use_threads=True)
    except pa.ArrowInvalid as error:
        if _ROW_LONGER_THAN_BLOCK not in str(error):
            raise
        # A row longer than a block (a field of megabytes): read the file as one block.
        block_size = min(len(data) + 1, _MAX_BLOCK_BYTES)
        table, skipped = _parse_csv(data, column_names, use_threads=True, block_size=block_size)
    if skipped:
        # Threaded parsing cannot number bad rows; the rare file that has some is parsed again.
        table, skipped = _parse_csv(data, column_names, use_threads=False, block_size=block_size)
    table = _named_columns(table)
    return SourceTable(table.append_column(ROW_NUMBER, _csv_row_numbers(table.num_rows, skipped)), skipped)


def _csv_header(data: bytes) -> list[str]:
    end = data.find(b"\n")
    line = data[: end if end >= 0 else len(data)]
    if line.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise _not_utf8(data)
    if b"\x00" in line:
        raise InvalidEncodingError(
            "the header line holds NUL bytes: the file is binary (compressed?) or UTF-16 text; "
            "CSV uploads must be UTF-8 text"
        )
    try:
        header = line.decode("utf-8-sig").rstrip("\r")
    except UnicodeDecodeError:
        raise _not_utf8(data) from None
    if not header.strip():
        raise UnreadableSourceError("the CSV file has no header row; its first line must name the columns")
    # Every column is read as text, which needs the names up front.
    return pacsv.read_csv(io.BytesIO(header.encode() + b"\n")).column_names


def _parse_csv(
    data: bytes, column_names: list[str], *, use_threads: bool, block_size: int | None = None
) -> tuple[pa.Table, list[tuple[int, str, str]]]:
    skipped: list[tuple[int, str, str]] = []

    def keep_bad_row(row: pacsv.InvalidRow) -> str:
        # `number` is the physical line, and the header is line 1.
        row_number = row.number - 1 if row.number is not None else -1
        reason = f"malformed CSV row: expected {row.expected_columns} fields, got {row.actual_columns}"
        skipped.append((row_number, row.text, reason))
        return "skip"

    read_options = pacsv.ReadOptions(use_threads=use_threads)
    if block_size:
        read_options.block_size = block_size
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in column_names},
                strings_can_be_null=True,
                null_values=[""],
            ),
            # Quoted values may hold line breaks; without this a block boundary inside one loses the file.
            parse_options=pacsv.ParseOptions(invalid_row_handler=keep_bad_row, newlines_in_values=True),
            read_options=read_options,
        )
    except pa.ArrowInvalid as error:
        if "UTF8" in str(error):
            raise _not_utf8(data) from error
        raise
    return table, skipped


def _csv_row_numbers(parsed_rows: int, skipped: list[tuple[int, str, str]]) -> pa.Array:
    """Row numbers of the parsed rows, skipping the numbers of malformed ones."""
    if not skipped:
        return pa.array(range(1, parsed_rows + 1), pa.int64())
    bad = {row for row, _, _ in skipped}
    numbers, candidate = [], 1
    while len(numbers) < parsed_rows:
        if candidate not in bad:
            numbers.append(candidate)
        candidate += 1
    return pa.array(numbers, pa.int64())


# --- JSON lines ----------------------------------------------------------------------------------


def _read_json_lines(data: bytes) -> SourceTable:
    try:
        table = pajson.read_json(io.BytesIO(data))
        if not _text_survives(table):
            return _read_json_lines_slowly(data)
        timestamp_columns = [f.name for f in table.schema if pa.types.is_timestamp(f.type)]
        if timestamp_columns:
            # Arrow turned ISO-looking strings into timestamps, losing their text ("2025-01-02"
            # would come back as "2025-01-02T00:00:00"); read those columns again as the strings they were.
            explicit = pa.schema([(name, pa.string()) for name in timestamp_columns])
            options = pajson.ParseOptions(explicit_schema=explicit, unexpected_field_behavior="infer")
            table = pajson.read_json(io.BytesIO(data), parse_options=options)
    except pa.ArrowInvalid:
        # Mixed types or a broken line: fall back to line-by-line parsing so only bad lines are lost.
        return _read_json_lines_slowly(data)
    try:
        table.validate(full=True)  # Arrow's JSON reader does not check that strings are UTF-8
    except pa.ArrowInvalid:
        raise _not_utf8(data) from None
    table = _named_columns(table)
    text = {name: _as_text(column) for name, column in zip(table.column_names, table.columns, strict=True)}
    return SourceTable(pa.table({**text, ROW_NUMBER: pa.array(range(1, table.num_rows + 1), pa.int64())}))


def _text_survives(table: pa.Table) -> bool:
    """Whether Arrow's typed columns still give each value's text: not for nested values (they must be
    marked invalid, which the line-by-line reader does), nor for doubles too large to print as written."""
    for column in table.columns:
        if pa.types.is_nested(column.type):
            return False
        if pa.types.is_floating(column.type):
            largest = pc.max(pc.abs(column)).as_py()
            if largest is not None and largest >= _EXACT_DOUBLE_LIMIT:
                return False
    return True


class _NonJsonNumber(str):
    """NaN, Infinity or -Infinity, which Python's json module reads but JSON does not have, or a number
    no double can hold (1e999); kept as written."""


def _json_float(text: str) -> float | _NonJsonNumber:
    number = float(text)
    return number if math.isfinite(number) else _NonJsonNumber(text)


def _read_json_lines_slowly(data: bytes) -> SourceTable:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _not_utf8(data) from None
    records: list[dict[str, str | None]] = []
    row_numbers: list[int] = []
    unparseable: list[tuple[int, str, str]] = []
    invalid: dict[str, list[int]] = {}
    # Only "\n" ends a JSON line: str.splitlines would also split at characters JSON strings may hold (U+2028).
    for number, text_line in enumerate(text.split("\n"), start=1):
        line = text_line.removesuffix("\r")
        if not line.strip():
            continue
        try:
            value = json.loads(line, parse_constant=_NonJsonNumber, parse_float=_json_float)
            if not isinstance(value, dict):
                raise ValueError("a JSON line must be an object")
        except (ValueError, RecursionError) as error:
            unparseable.append((number, line, f"invalid JSON: {error}"))
            continue
        record: dict[str, str | None] = {}
        for key, item in value.items():
            record[key], exact = _json_text(item)
            if not exact:
                invalid.setdefault(key, []).append(len(records))
        records.append(record)
        row_numbers.append(number)
    names = [name for name in dict.fromkeys(k for record in records for k in record) if name.strip()]
    columns = {n: pa.array([r.get(n) for r in records], pa.string()) for n in names}
    table = pa.table({**columns, ROW_NUMBER: pa.array(row_numbers, pa.int64())})
    masks = {}
    for name, rows in invalid.items():
        masks[name] = np.zeros(len(records), dtype=bool)
        masks[name][rows] = True
    return SourceTable(table, unparseable, invalid_values=masks)


def _json_text(value: object) -> tuple[str | None, bool]:
    """A JSON value's text, and whether a contract type may accept it."""
    if value is None:
        return None, True
    if isinstance(value, _NonJsonNumber):
        return str(value), False
    if isinstance(value, str):
        return value, True
    if isinstance(value, bool):
        return ("true" if value else "false"), True
    if isinstance(value, int | float):
        return str(value), True
    return json.dumps(value, ensure_ascii=False), False  # an object or an array


# --- Parquet -------------------------------------------------------------------------------------


def _read_parquet(data: bytes) -> SourceTable:
    parquet = pq.ParquetFile(io.BytesIO(data))
    _check_column_names(parquet.schema_arrow.names)
    table = parquet.read()
    claimed = parquet.metadata.num_rows
    if table.num_rows != claimed:
        raise UnreadableSourceError(
            f"the Parquet footer claims {claimed} rows, but the file holds {table.num_rows}: "
            "the file is damaged; write it again"
        )
    columns: dict[str, pa.ChunkedArray] = {}
    unsupported: dict[str, str] = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        try:
            columns[name] = _as_text(column)
        except _NoTextError as error:
            unsupported[name] = str(error)
    row_numbers = pa.array(range(1, table.num_rows + 1), pa.int64())
    return SourceTable(pa.table({**columns, ROW_NUMBER: row_numbers}), unsupported_columns=unsupported)
