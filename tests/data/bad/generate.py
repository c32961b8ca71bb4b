"""The bad-input corpus: files a new user might upload, each with its expected outcome in manifest.yaml.

    python -m tests.data.bad.generate OUT_DIR     # writes every file, named after its case, to look at

Nothing here is committed but this code and the manifest: every file is made at test time, and the
same case always gives the same bytes (no clock, no unseeded randomness), so an outcome never drifts.
"""

from __future__ import annotations

import gzip
import io
import json
import struct
import sys
import zipfile
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from lakehouse_api.uploads.sniff import SNIFF_BYTES
from pydantic import BaseModel, ConfigDict, model_validator

MANIFEST = Path(__file__).with_name("manifest.yaml")
HEADER = "order_id,customer_id,amount,date"
# Rows enough to put what follows them past the part of the file the API sniffs.
ROWS_PAST_SNIFF_WINDOW = SNIFF_BYTES // 20  # rows are at least 22 bytes long
BOMB_BYTES = 64 * 1024 * 1024

BUILDERS: dict[str, Callable[[], bytes]] = {}


def case(name: str) -> Callable[[Callable[[], bytes]], Callable[[], bytes]]:
    def register(build: Callable[[], bytes]) -> Callable[[], bytes]:
        BUILDERS[name] = build
        return build

    return register


# --- the manifest ----------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Refused(_Strict):
    """The upload API answers with this status and problem type; nothing of the file is kept."""

    status: int
    type: str
    detail: str


class Failed(_Strict):
    """The run ends Failed, at its first attempt, with this reason; the message contains `message`."""

    reason: str
    message: str


class Bronze(_Strict):
    """The values of one bronze column among the upload's rows (sorted, as text)."""

    column: str
    values: list[str]


class Succeeded(_Strict):
    input: int
    valid: int
    rejected: int
    quarantine: dict[int, str] = {}  # every rejected row by its number -> a fragment of its reason
    bronze: Bronze | None = None


class Expected(_Strict):
    refused: Refused | None = None
    succeeded: Succeeded | None = None
    failed: Failed | None = None

    @model_validator(mode="after")
    def _one(self) -> Expected:
        if sum(x is not None for x in (self.refused, self.succeeded, self.failed)) != 1:
            raise ValueError("expect exactly one of refused, succeeded, failed")
        if self.succeeded and len(self.succeeded.quarantine) != self.succeeded.rejected:
            raise ValueError("name every rejected row in quarantine")
        return self


class Case(_Strict):
    name: str
    about: str
    format: Literal["csv", "json", "parquet"]  # what the file is (the API sniffs the same)
    filename: str
    dataset: str = "orders"
    # api: uploaded through the upload API, as a user does. s3: put in S3 with the run the API would
    # create, for what the API refuses or cannot express; the operator must be safe with it too.
    path: Literal["api", "s3"] = "api"
    uploads: int = 1  # the same file uploaded this many times, one run each
    wrong_sha256: bool = False  # the run records another checksum than the object's (path s3)
    expect: Expected

    def data(self) -> bytes:
        return build(self.name)


@cache
def build(name: str) -> bytes:
    return BUILDERS[name]()


def manifest() -> list[Case]:
    cases = [Case.model_validate(entry) for entry in yaml.safe_load(MANIFEST.read_text())["cases"]]
    names = [c.name for c in cases]
    if sorted(names) != sorted(BUILDERS):
        raise ValueError(f"manifest and generator disagree: {sorted(set(names) ^ set(BUILDERS))}")
    return cases


# --- building blocks -------------------------------------------------------------------------------


def order_rows(count: int, first: int = 1) -> list[str]:
    """Valid orders rows: amounts 10.00-99.99, dates in 2025."""
    return [
        f"{i},{100 + i % 7},{10 + i % 90}.{i % 100:02d},2025-{1 + i % 12:02d}-{1 + i % 28:02d}"
        for i in range(first, first + count)
    ]


def csv_file(rows: list[str], header: str = HEADER, newline: str = "\n") -> bytes:
    return newline.join([header, *rows, ""]).encode()


def json_lines(records: list[dict[str, object]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def order_records(count: int) -> list[dict[str, object]]:
    return [
        {"order_id": i, "customer_id": 100 + i, "amount": round(10 + i * 1.25, 2), "date": f"2025-03-{i:02d}"}
        for i in range(1, count + 1)
    ]


def parquet_file(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def order_columns(count: int) -> dict[str, pa.Array]:
    return {
        "order_id": pa.array(range(1, count + 1), pa.int64()),
        "customer_id": pa.array([200 + i for i in range(count)], pa.int64()),
        "amount": pa.array([f"{5 + i}.50" for i in range(count)]),
        "date": pa.array([f"2025-06-{1 + i:02d}" for i in range(count)]),
    }


# --- text encodings --------------------------------------------------------------------------------


@case("utf8-bom-csv")
def _() -> bytes:
    return b"\xef\xbb\xbf" + csv_file(order_rows(5))


@case("utf8-bom-json-lines")
def _() -> bytes:
    records = order_records(5)
    records[4]["order_id"] = "five"  # a mixed-type column: read line by line, where the BOM once broke row 1
    return b"\xef\xbb\xbf" + json_lines(records)


@case("latin1-in-sniff-window")
def _() -> bytes:
    return (
        csv_file([f"{row},Caf\xe9 M\xfcller" for row in order_rows(3)], header=f"{HEADER},note")
        .decode()
        .encode("latin-1")
    )


@case("latin1-after-sniff-window")
def _() -> bytes:
    rows = [f"{row},ok" for row in order_rows(ROWS_PAST_SNIFF_WINDOW)]
    text = csv_file(rows, header=f"{HEADER},note") + f"{order_rows(1, 99_999)[0]},M\xfcller\n".encode("latin-1")
    assert text.index(b"\xfc") > SNIFF_BYTES
    return text


@case("utf16-with-bom")
def _() -> bytes:
    return csv_file(order_rows(5)).decode().encode("utf-16")


@case("utf16-straight-to-s3")
def _() -> bytes:
    return build("utf16-with-bom")


# --- headers and columns ---------------------------------------------------------------------------


@case("semicolon-delimiter")
def _() -> bytes:
    return csv_file([row.replace(",", ";") for row in order_rows(3)], header=HEADER.replace(",", ";"))


@case("tab-delimiter")
def _() -> bytes:
    return csv_file([row.replace(",", "\t") for row in order_rows(3)], header=HEADER.replace(",", "\t"))


@case("duplicate-column-names")
def _() -> bytes:
    return csv_file([f"{row},{row.split(',')[0]}" for row in order_rows(3)], header=f"{HEADER},order_id")


@case("extra-columns")
def _() -> bytes:
    return csv_file([f"web,{row},gift" for row in order_rows(4)], header=f"channel,{HEADER},note")


@case("renamed-column")
def _() -> bytes:
    return csv_file(order_rows(3), header=HEADER.replace(",date", ",order_date"))


@case("header-in-capitals")
def _() -> bytes:
    return csv_file(order_rows(3), header=HEADER.upper())


@case("trailing-empty-columns")
def _() -> bytes:
    return csv_file([f"{row},," for row in order_rows(4)], header=f"{HEADER},,")


# --- sizes, quoting and line endings ---------------------------------------------------------------


@case("ten-megabyte-field")
def _() -> bytes:
    first, _, third = order_rows(3)
    huge = "9" * (10 * 1024 * 1024)  # far longer than Arrow's 1 MiB read block
    return csv_file([first, f"2,101,{huge},2025-01-02", third])


@case("quoted-newlines")
def _() -> bytes:
    # Over 1 MiB, so the parser's blocks start inside quoted line breaks as well.
    rows = [f'{row},"line one\nline two, with a comma"' if i % 3 == 0 else f"{row},plain" for i, row in
            enumerate(order_rows(30_000), start=1)]  # fmt: skip
    return csv_file(rows, header=f"{HEADER},note")


@case("crlf-line-endings")
def _() -> bytes:
    return csv_file(order_rows(5), newline="\r\n")


@case("mixed-line-endings")
def _() -> bytes:
    endings = ["\r\n", "\n", "\r"]
    rows = order_rows(6)
    return (HEADER + "\n" + "".join(row + endings[i % 3] for i, row in enumerate(rows))).encode()


@case("blank-lines-mid-file")
def _() -> bytes:
    first, second, third, fourth = order_rows(4)
    return csv_file([first, "", second, "", "", third, "", f"{fourth.split(',')[0]},not-a-customer,1.00,2025-01-01"])


@case("nul-in-sniff-window")
def _() -> bytes:
    return csv_file(order_rows(3)).replace(b"101", b"1\x0001", 1)


@case("nul-after-sniff-window")
def _() -> bytes:
    rows = order_rows(ROWS_PAST_SNIFF_WINDOW)
    text = csv_file(rows) + b"99999,7\x00,12.00,2025-01-01\n"
    assert text.index(b"\x00") > SNIFF_BYTES
    return text


@case("formula-injection")
def _() -> bytes:
    names = ['=HYPERLINK("http://evil.example","click")', "+SUM(1,2)", "-2+3", "@cmd|' /C calc'!A0", "=1+1"]
    lines = ["customer_id,name,email,country,signup_date"]
    for i, name in enumerate(names, start=1):
        quoted = '"' + name.replace('"', '""') + '"'
        lines.append(f"{i},{quoted},user{i}@example.com,DE,2025-01-0{i}")
    return ("\n".join(lines) + "\n").encode()


# --- compressed archives ---------------------------------------------------------------------------


@case("gzip-bomb")
def _() -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="orders.csv", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as archive:
        archive.write(HEADER.encode() + b"\n" + b"0" * BOMB_BYTES)
    return buffer.getvalue()


@case("gzip-bomb-straight-to-s3")
def _() -> bytes:
    return build("gzip-bomb")


@case("zip-bomb")
def _() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        member = zipfile.ZipInfo("orders.csv", date_time=(2025, 1, 1, 0, 0, 0))
        member.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(member, HEADER.encode() + b"\n" + b"0" * BOMB_BYTES)
    return buffer.getvalue()


# --- Parquet ---------------------------------------------------------------------------------------


@case("parquet-wrong-column-types")
def _() -> bytes:
    columns = order_columns(5)
    columns["order_id"] = pa.array(["1", "2", "A-3", "4", "5"])  # text, one not a number
    columns["amount"] = pa.array([12.5, 0.1 + 0.2, 7.0, 3.25, 8.0], pa.float64())  # doubles, one too precise
    columns["customer_id"] = pa.array([200, 201, 202, 203, 204], pa.int32())  # a narrower integer is fine
    return parquet_file(pa.table(columns))


@case("parquet-list-column")
def _() -> bytes:
    columns = order_columns(3)
    columns["customer_id"] = pa.array([[200], [201, 202], []], pa.list_(pa.int64()))
    return parquet_file(pa.table(columns))


@case("parquet-nested-extra-columns")
def _() -> bytes:
    columns = order_columns(3)
    columns["shipping"] = pa.array([{"city": "Oslo", "zip": "0150"}] * 3)
    columns["tags"] = pa.array([["gift"], [], ["a", "b"]], pa.list_(pa.string()))
    return parquet_file(pa.table(columns))


@case("parquet-extra-columns")
def _() -> bytes:
    columns = order_columns(4)
    columns["channel"] = pa.array(["web", "shop", "web", "phone"])
    columns["discount"] = pa.array([0.1, 0.0, 0.2, 0.0])
    return parquet_file(pa.table(columns))


@case("parquet-footer-claims-more-rows")
def _() -> bytes:
    """Three rows; the file's footer says 50. Thrift compact encoding: num_rows (field 3, an i64 after the
    schema list) is the byte 0x16 and the zigzag varint of 3, 0x06; 50 is 0x64, of the same length."""
    data = parquet_file(pa.table(order_columns(3)))
    footer_length = struct.unpack("<I", data[-8:-4])[0]
    footer_start = len(data) - 8 - footer_length
    at = data.index(b"\x16\x06", footer_start)
    lying = data[:at] + b"\x16\x64" + data[at + 2 :]
    metadata = pq.ParquetFile(io.BytesIO(lying)).metadata
    assert (metadata.num_rows, metadata.row_group(0).num_rows) == (50, 3)
    return lying


@case("parquet-duplicate-column-names")
def _() -> bytes:
    columns = order_columns(3)
    table = pa.Table.from_arrays([*columns.values(), columns["amount"]], names=[*columns, "amount"])
    return parquet_file(table)


# --- JSON lines ------------------------------------------------------------------------------------


@case("json-wrong-types")
def _() -> bytes:
    records = order_records(6)
    records[1]["order_id"] = "two"
    records[2]["amount"] = True
    records[3]["customer_id"] = 1.5
    records[4]["date"] = 20250305
    return json_lines(records)


@case("json-missing-keys")
def _() -> bytes:
    records = order_records(5)
    del records[1]["customer_id"]
    del records[3]["amount"]
    return json_lines(records)


@case("json-nested-objects")
def _() -> bytes:
    records = [r | {"meta": {"app": "shop", "version": 2}} for r in order_records(5)]  # an extra nested column
    records[1]["customer_id"] = {"id": 102}
    records[2]["amount"] = [10, 2]
    return json_lines(records)


@case("json-nan-and-infinity")
def _() -> bytes:
    # Python's json module writes and reads these; JSON has no such numbers. 1e999 is JSON, but no double.
    amounts = ["10.50", "NaN", "Infinity", "-Infinity", "1e999", "17.50"]
    lines = [json.dumps(r | {"amount": "?"}).replace('"?"', a) for r, a in zip(order_records(6), amounts, strict=True)]
    return ("\n".join(lines) + "\n").encode()


# --- duplicates and dates --------------------------------------------------------------------------


@case("duplicate-ids-within-file")
def _() -> bytes:
    return csv_file([*order_rows(3, first=7001), "7001,999,55.55,2025-05-05"])


@case("duplicate-ids-across-files")
def _() -> bytes:
    return csv_file(order_rows(3, first=8001))


@case("far-future-dates")
def _() -> bytes:
    return csv_file(["1,101,10.00,2999-06-15", "2,101,11.00,9999-12-31", "3,101,12.00,10000-01-01"])


@case("header-only")
def _() -> bytes:
    return csv_file([])


@case("checksum-mismatch")
def _() -> bytes:
    return csv_file(order_rows(3))


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    for entry in manifest():
        (out / f"{entry.name}--{entry.filename}").write_bytes(entry.data())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
