from __future__ import annotations

import pytest
from lakehouse_api.uploads.sniff import (
    EmptyFileError,
    UnsupportedFormatError,
    check_extension,
    check_parquet_tail,
    sniff_format,
)

from lakehouse.devtools.sample_data import orders


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (orders(3).csv_bytes(), "csv"),
        (b"\xef\xbb\xbforder_id,amount\n1,2\n", "csv"),  # UTF-8 byte order mark
        (b"single_column\nvalue\n", "csv"),
        (orders(3).json_lines_bytes(), "json"),
        (b'\n  {"a": 1}\n{"a": 2}\n', "json"),
        (orders(3).parquet_bytes(), "parquet"),
    ],
)
def test_formats_are_recognised_by_content(head: bytes, expected: str) -> None:
    assert sniff_format(head, complete=True) == expected


@pytest.mark.parametrize(
    "head",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00",
        b"PK\x03\x04\x14\x00\x06\x00",  # zip / xlsx
        b"\x1f\x8b\x08\x00",  # gzip
        b"text with a \x00 NUL",
        b"[1, 2, 3]",
        b"<?xml version='1.0'?><orders/>",
        b"{broken\n",
        b"[]\n",
    ],
)
def test_other_content_is_unsupported(head: bytes) -> None:
    with pytest.raises(UnsupportedFormatError):
        sniff_format(head, complete=True)


def test_multibyte_character_cut_at_the_window_edge_is_fine() -> None:
    head = "name\ncafé".encode()[:-1]  # the é is cut in half

    assert sniff_format(head, complete=False) == "csv"
    with pytest.raises(UnsupportedFormatError):
        sniff_format(head, complete=True)


def test_a_json_line_longer_than_the_window_is_left_to_the_operator() -> None:
    assert sniff_format(b'{"a": "' + b"x" * 100, complete=False) == "json"


def test_empty_and_blank_files_are_empty() -> None:
    for head in (b"", b"\n\n  "):
        with pytest.raises(EmptyFileError):
            sniff_format(head, complete=True)


def test_extension_must_agree_with_content_when_it_names_a_format() -> None:
    check_extension("orders.csv", "csv")
    check_extension("orders.txt", "csv")  # not a format name: content decides
    check_extension("orders.NDJSON", "json")
    with pytest.raises(UnsupportedFormatError, match="its content is csv"):
        check_extension("orders.parquet", "csv")


def test_parquet_must_end_with_its_footer_magic() -> None:
    check_parquet_tail(orders(3).parquet_bytes()[-4:])
    with pytest.raises(UnsupportedFormatError):
        check_parquet_tail(b"\x00\x00\x00\x00")
