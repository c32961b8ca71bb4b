"""Reading an uploaded file into an all-string Arrow table, losing no row.

Everything is read as text first so that one bad value rejects one row, never the file:
typing happens in validation, value by value. Lines that cannot even be parsed (a CSV row
with the wrong number of fields, a JSON line that is not JSON) are kept with the reason.
What spoils the whole file (text that is not UTF-8, a column named twice, a damaged Parquet
footer) raises an InputError that names the line or column.

A file is read in batches of bounded size (`open_batches`), so an upload of gigabytes never sits in
memory: its columns are known from its first bytes (a CSV header, the first JSON lines) or its footer
(Parquet) before any row is read, and its rows follow batch by batch, numbered as in the whole file.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import itertools
import json
import math
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from lakehouse.contracts.model import CsvDialect
from lakehouse.formats import SourceFormat
from lakehouse.ingest.errors import (
    DuplicateColumnsError,
    InputError,
    InvalidEncodingError,
    UnreadableSourceError,
)

ROW_NUMBER = "_source_row"
# The text read into one batch: large enough for Arrow to work fast, small enough to bound memory.
BLOCK_BYTES = 8 * 2**20
# Rows of a Parquet batch: a block of text at 128 bytes a row, which few rows exceed.
ROW_BYTES_GUESS = 128
# A CSV header must end within this many bytes (the first bytes of the file, read on their own).
HEADER_BYTES = 2**20
# Arrow parses CSV in blocks and gives up on a row longer than a block. It reads several blocks ahead (held
# as Python bytes when it reads from Python), so its blocks are kept small and joined into batches after.
_ARROW_BLOCK_BYTES = 2**20
_ROW_LONGER_THAN_BLOCK = "straddling object"
_MAX_BLOCK_BYTES = 2**31 - 1
# Arrow prints a double in exponent notation from here on, so its text is no longer the file's.
_EXACT_DOUBLE_LIMIT = 1e15
_T = TypeVar("_T")


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


class UploadSource(Protocol):
    """An upload's bytes, read without holding them all: its first bytes, front to back, or at random."""

    size: int
    failure: BaseException | None  # a fault of the server the bytes come from, met while reading

    def head(self, length: int) -> bytes: ...

    def open(self) -> BinaryIO: ...

    def open_random(self) -> BinaryIO: ...

    def sha256(self) -> str: ...


class BytesSource:
    """An upload already in memory (NiFi's step, tests)."""

    failure: BaseException | None = None

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.size = len(data)

    def head(self, length: int) -> bytes:
        return self._data[:length]

    def open(self) -> BinaryIO:
        return io.BytesIO(self._data)

    def open_random(self) -> BinaryIO:
        return io.BytesIO(self._data)

    def sha256(self) -> str:
        return hashlib.sha256(self._data).hexdigest()


@dataclass
class SourceBatches:
    """An upload opened for reading: the columns it declares (a CSV header, a Parquet schema, the keys of the
    first JSON lines), known before its rows are read, and its rows in batches of bounded size."""

    columns: list[str]
    batches: Iterator[SourceTable]
    unsupported_columns: dict[str, str] = field(default_factory=dict)


class FileSource:
    """An upload in a local file (the CLI's `dataset check`)."""

    failure: BaseException | None = None

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = path
        self.size = os.path.getsize(path)

    def head(self, length: int) -> bytes:
        with open(self._path, "rb") as stream:
            return stream.read(length)

    def open(self) -> BinaryIO:
        return open(self._path, "rb")

    def open_random(self) -> BinaryIO:
        return open(self._path, "rb")

    def sha256(self) -> str:
        digest = hashlib.sha256()
        with open(self._path, "rb") as stream:
            while chunk := stream.read(BLOCK_BYTES):
                digest.update(chunk)
        return digest.hexdigest()


@dataclass(frozen=True)
class CsvReading:
    """How to read a CSV file: its dialect, and the contract's column names, which a file without a header
    has in this order and to which a header's names are matched (trimmed, or in any case, when asked)."""

    dialect: CsvDialect = field(default_factory=CsvDialect)
    columns: tuple[str, ...] = ()

    def matched(self, header: list[str]) -> list[str]:
        """The header's names, each replaced by the contract name it matches under the dialect's rules."""
        if not (self.dialect.header_trim or self.dialect.header_ignore_case):
            return header
        wanted = {self._key(name): name for name in self.columns}
        return [wanted.get(self._key(name), name) if name.strip() else name for name in header]

    def _key(self, name: str) -> str:
        name = name.strip() if self.dialect.header_trim else name
        return name.casefold() if self.dialect.header_ignore_case else name


def read_source(data: bytes, source_format: SourceFormat, csv: CsvReading | None = None) -> SourceTable:
    """A whole file in memory as one table (tests and benchmarks; the engines read in batches)."""
    opened = open_batches(BytesSource(data), source_format, csv=csv)
    return concat_sources(list(opened.batches), opened.unsupported_columns)


def open_batches(
    source: UploadSource, source_format: SourceFormat, block_bytes: int = BLOCK_BYTES, csv: CsvReading | None = None
) -> SourceBatches:
    """Reads only what tells the file's columns; the rows come as the batches are iterated. Raises an
    InputError for a file that is not readable in the declared format, at once or from the batch it is met in."""
    readers: dict[SourceFormat, Callable[[], SourceBatches]] = {
        SourceFormat.CSV: lambda: _csv_batches(source, block_bytes, csv or CsvReading()),
        SourceFormat.JSON: lambda: _json_batches(source, block_bytes),
        SourceFormat.PARQUET: lambda: _parquet_batches(source, block_bytes),
    }
    opened = _input_errors(source, source_format, readers[source_format])
    return SourceBatches(
        opened.columns,
        _batches_with_input_errors(source, source_format, opened.batches),
        opened.unsupported_columns,
    )


def _batches_with_input_errors(
    source: UploadSource, source_format: SourceFormat, batches: Iterator[SourceTable]
) -> Iterator[SourceTable]:
    while True:
        batch = _input_errors(source, source_format, lambda: next(batches, None))
        if batch is None:
            return
        yield batch


def _input_errors(source: UploadSource, source_format: SourceFormat, read: Callable[[], _T]) -> _T:
    """Arrow's and Python's reading errors as the InputError they mean; a fault of the server passes as it is."""
    try:
        return read()
    except InputError:
        raise
    except Exception as error:
        if source.failure is not None:
            raise source.failure from error
        if isinstance(error, UnicodeDecodeError):
            raise _not_utf8(source) from error
        if isinstance(error, pa.ArrowInvalid | OSError):
            raise UnreadableSourceError(
                f"cannot read the file as {source_format}: {error}; check the file and its declared format"
            ) from error
        raise


def concat_sources(batches: list[SourceTable], unsupported: dict[str, str] | None = None) -> SourceTable:
    if len(batches) == 1:
        return batches[0]
    table = pa.concat_tables([b.table for b in batches], promote_options="default")
    masks: dict[str, np.ndarray] = {}
    for name in {name for b in batches for name in b.invalid_values}:
        masks[name] = np.concatenate(
            [b.invalid_values.get(name, np.zeros(b.table.num_rows, dtype=bool)) for b in batches]
        )
    unparseable = sorted((row for b in batches for row in b.unparseable), key=lambda row: row[0])
    return SourceTable(table, unparseable, masks, dict(unsupported or {}))


def _not_utf8(source: UploadSource) -> InvalidEncodingError:
    """Where a text file stops being UTF-8 (read again, so only ever on the failure path)."""
    if source.head(2).startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return InvalidEncodingError("the file is UTF-16 text (it starts with a UTF-16 byte order mark); save as UTF-8")
    line, carry = 1, b""
    with source.open() as stream:
        while chunk := stream.read(BLOCK_BYTES):
            data = carry + chunk
            try:
                data.decode("utf-8")
                carry = b""
            except UnicodeDecodeError as error:
                if error.reason == "unexpected end of data" and len(chunk) == BLOCK_BYTES:
                    # A character cut at the chunk's end: decode it with the next chunk.
                    carry = data[error.start :]
                    line += data.count(b"\n", 0, error.start)
                    continue
                line += data.count(b"\n", 0, error.start)
                return InvalidEncodingError(
                    f"the file is not UTF-8: byte 0x{data[error.start]:02x} on line {line} is not valid UTF-8 "
                    "(Latin-1 or Windows-1252 text?); save the file as UTF-8"
                )
            line += data.count(b"\n")
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


def _csv_batches(source: UploadSource, block_bytes: int, csv: CsvReading) -> SourceBatches:
    column_names = csv.matched(_csv_header(source, csv.dialect)) if csv.dialect.header else list(csv.columns)
    _check_column_names(column_names)
    named = [name for name in column_names if name.strip()]
    return SourceBatches(named, _csv_rows(source, column_names, named, block_bytes, csv.dialect))


def _parse_options(dialect: CsvDialect, **options: object) -> pacsv.ParseOptions:
    return pacsv.ParseOptions(
        delimiter=dialect.delimiter,
        quote_char=dialect.quote or False,
        escape_char=dialect.escape or False,
        **options,
    )


def _csv_header(source: UploadSource, dialect: CsvDialect) -> list[str]:
    data = source.head(HEADER_BYTES)
    end = data.find(b"\n")
    line = data[: end if end >= 0 else len(data)]
    if line.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise _not_utf8(source)
    if b"\x00" in line:
        raise InvalidEncodingError(
            "the header line holds NUL bytes: the file is binary (compressed?) or UTF-16 text; "
            "CSV uploads must be UTF-8 text"
        )
    if end < 0 and source.size > len(data):
        raise UnreadableSourceError(
            f"the CSV header is longer than {HEADER_BYTES // 2**20} MiB: the file is not CSV, or not split into lines"
        )
    try:
        header = line.decode("utf-8-sig").rstrip("\r")
    except UnicodeDecodeError:
        raise _not_utf8(source) from None
    if not header.strip():
        raise UnreadableSourceError("the CSV file has no header row; its first line must name the columns")
    # Every column is read as text, which needs the names up front.
    return pacsv.read_csv(io.BytesIO(header.encode() + b"\n"), parse_options=_parse_options(dialect)).column_names


class _CsvRowNumbers:
    """Numbers the parsed rows 1, 2, ... skipping the numbers of malformed rows (their own line number less
    the header's). Arrow reports a malformed row while parsing ahead, so one is held until the batch that
    reaches its number, keeping the quarantine in file order."""

    def __init__(self) -> None:
        self._next = 1
        self._bad: set[int] = set()
        self._held: list[tuple[int, str, str]] = []
        self.parsed = 0

    def malformed(self, row: tuple[int, str, str]) -> None:
        if row[0] not in self._bad:  # a file read again from the start reports its rows again
            self._bad.add(row[0])
            self._held.append(row)

    def number(self, parsed_rows: int) -> tuple[pa.Array, list[tuple[int, str, str]]]:
        """Numbers for the next `parsed_rows` rows, and the malformed rows up to the last of them."""
        # In numpy, not row by row in Python (1.8 s of a 9 s ingest of 1.8 M rows): the next numbers, enough to
        # skip every malformed row still ahead, less those rows.
        ahead = np.fromiter((row for row in self._bad if row >= self._next), np.int64)
        candidates = np.arange(self._next, self._next + parsed_rows + len(ahead), dtype=np.int64)
        numbers = candidates[~np.isin(candidates, ahead)][:parsed_rows] if len(ahead) else candidates
        if parsed_rows:
            self._next = int(numbers[-1]) + 1
        self.parsed += parsed_rows
        last = int(numbers[-1]) if parsed_rows else self._next - 1
        due = [row for row in self._held if row[0] <= last]
        self._held = [row for row in self._held if row[0] > last]
        return pa.array(numbers, pa.int64()), due

    def rest(self) -> list[tuple[int, str, str]]:
        rest, self._held = self._held, []
        return rest


def _csv_rows(
    source: UploadSource, column_names: list[str], named: list[str], block_bytes: int, dialect: CsvDialect
) -> Iterator[SourceTable]:
    numbering = _CsvRowNumbers()
    for table in _coalesced(_csv_tables(source, column_names, block_bytes, numbering, dialect), block_bytes):
        numbers, malformed = numbering.number(table.num_rows)
        yield SourceTable(table.append_column(ROW_NUMBER, numbers), malformed)
    empty = pa.table({name: pa.array([], pa.string()) for name in named})
    rest = numbering.rest()
    if rest or not numbering.parsed:
        # A file with no row still gives one (empty) batch, so every check is counted, as for any file.
        yield SourceTable(empty.append_column(ROW_NUMBER, pa.array([], pa.int64())), rest)


def _csv_tables(
    source: UploadSource, column_names: list[str], block_bytes: int, numbering: _CsvRowNumbers, dialect: CsvDialect
) -> Iterator[pa.Table]:
    """The parsed rows, in Arrow's blocks. Small blocks: Arrow reads several ahead, which holds memory."""
    read_block = min(block_bytes, _ARROW_BLOCK_BYTES)
    given = 0  # rows already given out, skipped when the file is read again with larger blocks
    while True:
        try:
            seen = 0
            for parsed in _parse_csv(source, column_names, read_block, numbering.malformed, dialect):
                skip = min(max(given - seen, 0), parsed.num_rows)
                seen += parsed.num_rows
                if skip < parsed.num_rows:
                    given += parsed.num_rows - skip
                    yield _named_columns(parsed.slice(skip))
            return
        except _RowLongerThanBlockError:
            if read_block >= _MAX_BLOCK_BYTES:
                raise
            # A row longer than a block (a field of megabytes): read the file again in larger blocks.
            read_block = min(read_block * 16, _MAX_BLOCK_BYTES)


def _coalesced(tables: Iterator[pa.Table], target_bytes: int) -> Iterator[pa.Table]:
    """Tables joined until they hold `target_bytes`, so validation and row groups work on large batches."""
    held: list[pa.Table] = []
    size = 0
    for table in tables:
        held.append(table)
        size += table.nbytes
        if size >= target_bytes:
            yield pa.concat_tables(held)
            held, size = [], 0
    if held:
        yield pa.concat_tables(held)


class _RowLongerThanBlockError(Exception):
    pass


def _parse_csv(
    source: UploadSource,
    column_names: list[str],
    block_bytes: int,
    on_malformed: Callable[[tuple[int, str, str]], None],
    dialect: CsvDialect,
) -> Iterator[pa.Table]:
    header_lines = 1 if dialect.header else 0

    def keep_bad_row(row: pacsv.InvalidRow) -> str:
        # `number` is the physical line; rows are numbered after the header.
        row_number = row.number - header_lines if row.number is not None else -1
        reason = f"malformed CSV row: expected {row.expected_columns} fields, got {row.actual_columns}"
        on_malformed((row_number, row.text, reason))
        return "skip"

    with source.open() as stream:
        try:
            reader = pacsv.open_csv(
                stream,
                convert_options=pacsv.ConvertOptions(
                    column_types={name: pa.string() for name in column_names},
                    strings_can_be_null=True,
                    null_values=[""],
                ),
                # Quoted values may hold line breaks; without this a block boundary inside one loses the file.
                parse_options=_parse_options(dialect, invalid_row_handler=keep_bad_row, newlines_in_values=True),
                # One thread: only then does Arrow know the line number of a malformed row. The names are ours
                # (matched to the contract, or the contract's for a file without a header), so the header is skipped.
                read_options=pacsv.ReadOptions(
                    use_threads=False, block_size=block_bytes, column_names=column_names, skip_rows=header_lines
                ),
            )
            for batch in reader:
                yield pa.Table.from_batches([batch])
        except pa.ArrowInvalid as error:
            if source.failure is None and _ROW_LONGER_THAN_BLOCK in str(error):
                raise _RowLongerThanBlockError from error
            if source.failure is None and "UTF8" in str(error):
                raise _not_utf8(source) from error
            raise


# --- JSON lines ----------------------------------------------------------------------------------


def _json_batches(source: UploadSource, block_bytes: int) -> SourceBatches:
    """JSON lines in chunks of whole lines; the first chunk's keys stand for the file's columns."""
    chunks = _line_chunks(source, block_bytes)
    first_line, data = next(chunks, (1, b""))
    first = _read_json_lines(data, source, first_line)
    rest = (_read_json_lines(chunk, source, line) for line, chunk in chunks)
    columns = [name for name in first.table.column_names if name != ROW_NUMBER]
    return SourceBatches(columns, itertools.chain([first], rest))


def _line_chunks(source: UploadSource, block_bytes: int) -> Iterator[tuple[int, bytes]]:
    """About `block_bytes` of whole lines at a time, each with the number of its first line."""
    line, carry = 1, b""
    with source.open() as stream:
        while block := stream.read(block_bytes):
            data = carry + block
            end = data.rfind(b"\n") + 1
            if end == 0:  # one line longer than a block: read on until it ends
                carry = data
                continue
            yield line, data[:end]
            line += data.count(b"\n", 0, end)
            carry = data[end:]
    if carry:
        yield line, carry


def _read_json_lines(data: bytes, source: UploadSource, first_line: int = 1) -> SourceTable:
    try:
        table = pajson.read_json(io.BytesIO(data))
        if not _text_survives(table):
            return _read_json_lines_slowly(data, source, first_line)
        timestamp_columns = [f.name for f in table.schema if pa.types.is_timestamp(f.type)]
        if timestamp_columns:
            # Arrow turned ISO-looking strings into timestamps, losing their text ("2025-01-02"
            # would come back as "2025-01-02T00:00:00"); read those columns again as the strings they were.
            explicit = pa.schema([(name, pa.string()) for name in timestamp_columns])
            options = pajson.ParseOptions(explicit_schema=explicit, unexpected_field_behavior="infer")
            table = pajson.read_json(io.BytesIO(data), parse_options=options)
    except pa.ArrowInvalid:
        # Mixed types or a broken line: fall back to line-by-line parsing so only bad lines are lost.
        return _read_json_lines_slowly(data, source, first_line)
    try:
        table.validate(full=True)  # Arrow's JSON reader does not check that strings are UTF-8
    except pa.ArrowInvalid:
        raise _not_utf8(source) from None
    table = _named_columns(table)
    text = {name: _as_text(column) for name, column in zip(table.column_names, table.columns, strict=True)}
    numbers = pa.array(range(first_line, first_line + table.num_rows), pa.int64())
    return SourceTable(pa.table({**text, ROW_NUMBER: numbers}))


def _text_survives(table: pa.Table) -> bool:
    """Whether Arrow's typed columns still give each value's text: not for nested values (they must be
    marked invalid, which the line-by-line reader does), nor for doubles too large to print as written."""
    for column in table.columns:
        if pa.types.is_nested(column.type):
            return False
        if pa.types.is_floating(column.type):
            if pc.any(pc.or_(pc.is_nan(column), pc.is_inf(column))).as_py():
                return False  # NaN or Infinity: only the line-by-line reader keeps how the file wrote it
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


def _read_json_lines_slowly(data: bytes, source: UploadSource, first_line: int) -> SourceTable:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _not_utf8(source) from None
    records: list[dict[str, str | None]] = []
    row_numbers: list[int] = []
    unparseable: list[tuple[int, str, str]] = []
    invalid: dict[str, list[int]] = {}
    # Only "\n" ends a JSON line: str.splitlines would also split at characters JSON strings may hold (U+2028).
    for number, text_line in enumerate(text.split("\n"), start=first_line):
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


def _parquet_batches(source: UploadSource, block_bytes: int) -> SourceBatches:
    """The footer (ranged reads at the end) tells the columns; the rows come a row group at a time."""
    parquet = pq.ParquetFile(source.open_random())
    _check_column_names(parquet.schema_arrow.names)
    claimed = parquet.metadata.num_rows
    held = sum(parquet.metadata.row_group(i).num_rows for i in range(parquet.metadata.num_row_groups))
    if held != claimed:
        raise _footer_claims(claimed, held)
    unsupported: dict[str, str] = {}
    for column in parquet.schema_arrow:
        try:
            _as_text(pa.chunked_array([], column.type))
        except _NoTextError as error:
            unsupported[column.name] = str(error)
    names = [name for name in parquet.schema_arrow.names if name not in unsupported]
    return SourceBatches(
        names, _parquet_rows(parquet, names, claimed, max(block_bytes // ROW_BYTES_GUESS, 1)), unsupported
    )


def _footer_claims(claimed: int, held: int) -> UnreadableSourceError:
    return UnreadableSourceError(
        f"the Parquet footer claims {claimed} rows, but the file holds {held}: the file is damaged; write it again"
    )


def _parquet_rows(parquet: pq.ParquetFile, names: list[str], claimed: int, batch_rows: int) -> Iterator[SourceTable]:
    first_row = 1
    batches = parquet.iter_batches(batch_size=batch_rows, columns=names, use_threads=False)
    for batch in itertools.chain(batches, [None] if claimed == 0 else []):
        table = pa.Table.from_batches([batch]) if batch is not None else parquet.schema_arrow.empty_table()
        columns: dict[str, pa.ChunkedArray] = {}
        unsupported: dict[str, str] = {}
        for name in names:
            try:
                columns[name] = _as_text(table.column(name))
            except _NoTextError as error:  # values of a type that has a text form, but not these (binary)
                unsupported[name] = str(error)
        row_numbers = pa.array(range(first_row, first_row + table.num_rows), pa.int64())
        first_row += table.num_rows
        yield SourceTable(pa.table({**columns, ROW_NUMBER: row_numbers}), unsupported_columns=unsupported)
    if first_row - 1 != claimed:
        raise _footer_claims(claimed, first_row - 1)
