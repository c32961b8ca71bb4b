"""Reading an uploaded file into an all-string Arrow table, losing no row.

Everything is read as text first so that one bad value rejects one row, never the file:
typing happens in validation, value by value. Lines that cannot even be parsed (a CSV row
with the wrong number of fields, a JSON line that is not JSON) are kept with the reason.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from lakehouse.formats import SourceFormat

ROW_NUMBER = "_source_row"


class UnreadableSourceError(ValueError):
    """The file as a whole cannot be read in the declared format."""


@dataclass
class SourceTable:
    """Rows that parsed (as text, with their 1-based row number) and rows that did not."""

    table: pa.Table
    unparseable: list[tuple[int, str, str]] = field(default_factory=list)  # (row, raw text, reason)


def read_source(data: bytes, source_format: SourceFormat) -> SourceTable:
    readers = {SourceFormat.CSV: _read_csv, SourceFormat.JSON: _read_json_lines, SourceFormat.PARQUET: _read_parquet}
    try:
        return readers[source_format](data)
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as error:
        raise UnreadableSourceError(f"cannot read the file as {source_format}: {error}") from error


def _with_row_numbers(table: pa.Table, row_numbers: pa.Array | None = None) -> pa.Table:
    if row_numbers is None:
        row_numbers = pa.array(range(1, table.num_rows + 1), pa.int64())
    return table.append_column(ROW_NUMBER, row_numbers)


def _all_text(table: pa.Table) -> pa.Table:
    columns = []
    for column in table.columns:
        if pa.types.is_string(column.type):
            columns.append(column)
        elif pa.types.is_timestamp(column.type):
            columns.append(pc.strftime(column, format="%Y-%m-%dT%H:%M:%S"))
        else:
            columns.append(column.cast(pa.string()))
    return pa.Table.from_arrays(columns, names=table.column_names)


def _read_csv(data: bytes) -> SourceTable:
    header = data.split(b"\n", 1)[0].decode("utf-8-sig").rstrip("\r")
    if not header.strip():
        raise UnreadableSourceError("the CSV file has no header row")
    # Every column is read as text, which needs the names up front.
    column_names = pacsv.read_csv(io.BytesIO(header.encode() + b"\n")).column_names
    table, skipped = _parse_csv(data, column_names, use_threads=True)
    if skipped:
        # Threaded parsing cannot number bad rows; the rare file that has some is parsed again.
        table, skipped = _parse_csv(data, column_names, use_threads=False)
    return SourceTable(_with_row_numbers(table, _csv_row_numbers(table.num_rows, skipped)), skipped)


def _parse_csv(
    data: bytes, column_names: list[str], *, use_threads: bool
) -> tuple[pa.Table, list[tuple[int, str, str]]]:
    skipped: list[tuple[int, str, str]] = []

    def keep_bad_row(row: pacsv.InvalidRow) -> str:
        # `number` is the physical line, and the header is line 1.
        row_number = row.number - 1 if row.number is not None else -1
        reason = f"malformed CSV row: expected {row.expected_columns} fields, got {row.actual_columns}"
        skipped.append((row_number, row.text, reason))
        return "skip"

    table = pacsv.read_csv(
        io.BytesIO(data),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in column_names},
            strings_can_be_null=True,
            null_values=[""],
        ),
        parse_options=pacsv.ParseOptions(invalid_row_handler=keep_bad_row),
        read_options=pacsv.ReadOptions(use_threads=use_threads),
    )
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


def _read_json_lines(data: bytes) -> SourceTable:
    try:
        table = pajson.read_json(io.BytesIO(data))
        timestamp_columns = [f.name for f in table.schema if pa.types.is_timestamp(f.type)]
        if timestamp_columns:
            # Arrow turned ISO-looking strings into timestamps, losing their text ("2025-01-02"
            # would come back as "2025-01-02T00:00:00"); read those columns again as the strings they were.
            explicit = pa.schema([(name, pa.string()) for name in timestamp_columns])
            options = pajson.ParseOptions(explicit_schema=explicit, unexpected_field_behavior="infer")
            table = pajson.read_json(io.BytesIO(data), parse_options=options)
        return SourceTable(_with_row_numbers(_all_text(table)))
    except pa.ArrowInvalid:
        # Mixed types or a broken line: fall back to line-by-line parsing so only bad lines are lost.
        return _read_json_lines_slowly(data)


def _read_json_lines_slowly(data: bytes) -> SourceTable:
    records: list[dict[str, str | None]] = []
    row_numbers: list[int] = []
    unparseable: list[tuple[int, str, str]] = []
    for number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
            if not isinstance(value, dict):
                raise ValueError("a JSON line must be an object")
        except ValueError as error:
            unparseable.append((number, line, f"invalid JSON: {error}"))
            continue
        records.append({k: _json_text(v) for k, v in value.items()})
        row_numbers.append(number)
    names = list(dict.fromkeys(k for record in records for k in record))
    table = pa.table({n: pa.array([r.get(n) for r in records], pa.string()) for n in names})
    if not names:
        table = pa.table({})
    return SourceTable(_with_row_numbers(table, pa.array(row_numbers, pa.int64())), unparseable)


def _json_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value)


def _read_parquet(data: bytes) -> SourceTable:
    return SourceTable(_with_row_numbers(_all_text(pq.read_table(io.BytesIO(data)))))
