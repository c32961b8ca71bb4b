"""Deciding a file's format from its first bytes, because a name or a Content-Type is only a claim."""

from __future__ import annotations

import codecs
import json
from pathlib import PurePosixPath

from lakehouse.formats import SourceFormat

SNIFF_BYTES = 64 * 1024
PARQUET_MAGIC = b"PAR1"
_EXTENSIONS: dict[str, SourceFormat] = {
    ".csv": SourceFormat.CSV,
    ".json": SourceFormat.JSON,
    ".jsonl": SourceFormat.JSON,
    ".ndjson": SourceFormat.JSON,
    ".parquet": SourceFormat.PARQUET,
    ".pq": SourceFormat.PARQUET,
}
# Text may hold tabs and line breaks; other C0 controls only appear in binary files.
_BINARY_CONTROLS = frozenset(chr(c) for c in range(32) if chr(c) not in "\t\n\r\f")


class UnsupportedFormatError(ValueError):
    pass


class EmptyFileError(ValueError):
    pass


def format_from_extension(filename: str) -> SourceFormat | None:
    return _EXTENSIONS.get(PurePosixPath(filename).suffix.lower())


def sniff_format(head: bytes, *, complete: bool) -> SourceFormat:
    """The format of a file that starts with `head` (`complete` when head is the whole file)."""
    if not head.strip():
        raise EmptyFileError("the file is empty")
    if head.startswith(PARQUET_MAGIC):
        return SourceFormat.PARQUET
    text = _decode_text(head, complete=complete)
    start = text.lstrip("\ufeff \t\r\n")
    if start.startswith("{"):
        _check_json_line(start, complete=complete)
        return SourceFormat.JSON
    if start.startswith("["):
        raise UnsupportedFormatError("JSON arrays are not supported; send JSON lines (one object per line)")
    if start.startswith("<"):
        raise UnsupportedFormatError("the file looks like XML or HTML; send CSV, JSON lines or Parquet")
    return SourceFormat.CSV


def check_parquet_tail(tail: bytes) -> None:
    """A Parquet file also ends with the magic; a truncated one does not."""
    if not tail.endswith(PARQUET_MAGIC):
        raise UnsupportedFormatError("the file starts like Parquet but does not end with the Parquet footer")


def check_extension(filename: str, sniffed: SourceFormat) -> None:
    claimed = format_from_extension(filename)
    if claimed is not None and claimed != sniffed:
        raise UnsupportedFormatError(f"the file is named {filename!r} but its content is {sniffed}")


def _decode_text(head: bytes, *, complete: bool) -> str:
    # Incremental, so a multi-byte character cut at the end of the sniffed window is not an error.
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        text = decoder.decode(head, final=complete)
    except UnicodeDecodeError:
        raise UnsupportedFormatError("the file is neither Parquet nor UTF-8 text (CSV or JSON lines)") from None
    if any(ch in _BINARY_CONTROLS for ch in text):
        raise UnsupportedFormatError("the file holds binary data; send CSV, JSON lines or Parquet")
    return text


def _check_json_line(text: str, *, complete: bool) -> None:
    first, newline, _ = text.partition("\n")
    if not newline and not complete:
        return  # a first line longer than the window: the operator will judge it
    try:
        parsed = json.loads(first)
    except json.JSONDecodeError:
        raise UnsupportedFormatError("the file starts with '{' but its first line is not a JSON object") from None
    if not isinstance(parsed, dict):
        raise UnsupportedFormatError("JSON lines must hold one object per line")
