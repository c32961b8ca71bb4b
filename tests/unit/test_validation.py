"""The Arrow validator against independent expectations from the sample generator."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest

from lakehouse.contracts.model import DatasetContract
from lakehouse.contracts.registry import ContractRegistry
from lakehouse.devtools.sample_data import orders
from lakehouse.ingest.errors import MissingColumnsError, UnreadableSourceError
from lakehouse.ingest.readers import read_source
from lakehouse.ingest.validation import REJECT_REASON, validate

CONTRACTS = ContractRegistry.default()


@pytest.fixture(scope="module")
def orders_contract() -> DatasetContract:
    return CONTRACTS.get("orders")


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_every_format_keeps_valid_rows_and_rejects_each_bad_row_with_its_reason(orders_contract, fmt) -> None:
    sample = orders(120, invalid_every=10)
    data = {"csv": sample.csv_bytes, "json": sample.json_lines_bytes, "parquet": sample.parquet_bytes}[fmt]()

    result = validate(orders_contract, read_source(data, fmt))

    valid = {
        row["order_id"]: (row["customer_id"], row["amount"], row["order_date"]) for row in result.valid.to_pylist()
    }
    assert valid == sample.valid
    reasons = {row["_source_row"]: row[REJECT_REASON] for row in result.rejected.to_pylist()}
    assert set(reasons) == set(sample.rejected)
    for row_number, fragment in sample.rejected.items():
        assert fragment in reasons[row_number]
    assert result.input_rows == 120


@pytest.mark.parametrize("fmt", ["json", "parquet"])
def test_all_valid_files_keep_every_row(orders_contract, fmt) -> None:
    """Without any invalid value, type inference of JSON/Parquet readers must not change the text."""
    sample = orders(30)
    data = sample.json_lines_bytes() if fmt == "json" else sample.parquet_bytes()
    result = validate(orders_contract, read_source(data, fmt))
    assert result.rejected.num_rows == 0
    assert sorted(result.valid.column("order_id").to_pylist()) == sorted(sample.valid)


def test_rejected_rows_keep_their_original_text(orders_contract) -> None:
    data = b"order_id,customer_id,amount,date\n1,2,  -3.10 ,2025-05-05\n"
    rejected = validate(orders_contract, read_source(data, "csv")).rejected.to_pylist()
    assert rejected[0]["amount"] == "  -3.10 "
    assert rejected[0][REJECT_REASON] == "amount_positive: amount > 0 failed (value -3.10)"


def test_one_row_can_fail_several_checks(orders_contract) -> None:
    data = b"order_id,customer_id,amount,date\nx,,abc,2025-13-01\n"
    reason = validate(orders_contract, read_source(data, "csv")).rejected.column(REJECT_REASON)[0].as_py()
    for fragment in [
        "order_id: 'x' is not a valid long",
        "customer_id: required value is missing",
        "amount: 'abc' is not a valid decimal(10,2)",
        "order_date: '2025-13-01' is not a valid date",
    ]:
        assert fragment in reason


def test_missing_required_column_rejects_the_file(orders_contract) -> None:
    with pytest.raises(MissingColumnsError, match="lacks required column"):
        validate(orders_contract, read_source(b"order_id,amount\n1,2.00\n", "csv"))


def test_malformed_csv_rows_are_quarantined_with_line_text(orders_contract) -> None:
    data = b"order_id,customer_id,amount,date\n1,2,3.00,2025-01-01\n2,3\n3,4,5.00,2025-01-02\n"
    result = validate(orders_contract, read_source(data, "csv"))
    assert result.valid.column("order_id").to_pylist() == [1, 3]
    bad = result.rejected.to_pylist()
    assert [(r["_source_row"], r["_raw_record"]) for r in bad] == [(2, "2,3")]
    assert "expected 4 fields, got 2" in bad[0][REJECT_REASON]


def test_broken_json_line_is_quarantined_and_others_survive(orders_contract) -> None:
    data = b'{"order_id": 1, "customer_id": 2, "amount": 3.5, "date": "2025-01-02"}\n{oops\n'
    result = validate(orders_contract, read_source(data, "json"))
    assert result.valid.to_pylist() == [
        {"order_id": 1, "customer_id": 2, "amount": Decimal("3.50"), "order_date": dt.date(2025, 1, 2)}
    ]
    assert result.rejected.column(REJECT_REASON)[0].as_py().startswith("invalid JSON")


def test_decimal_precision_and_scale_are_enforced(orders_contract) -> None:
    data = b"order_id,customer_id,amount,date\n1,2,1.234,2025-01-01\n2,2,123456789.00,2025-01-01\n3,2,0.5,2025-01-01\n"
    result = validate(orders_contract, read_source(data, "csv"))
    assert result.valid.column("order_id").to_pylist() == [3]
    assert result.rejected.num_rows == 2


def test_optional_columns_may_be_absent() -> None:
    contract = CONTRACTS.get("customers")
    data = b"customer_id,name,email,country\n1,Ann,ann@example.com,DE\n2,Bob,bob-at-example,FR\n"
    result = validate(contract, read_source(data, "csv"))
    assert result.valid.column("signup_date").to_pylist() == [None]
    assert "email_well_formed" in result.rejected.column(REJECT_REASON)[0].as_py()


def test_data_quality_counts_add_up(orders_contract) -> None:
    sample = orders(50, invalid_every=5)
    result = validate(orders_contract, read_source(sample.csv_bytes(), "csv"))
    checks = {(c.check_name, c.column): (c.passed, c.failed) for c in result.checks}
    assert checks[("row_count", "")] == (40, 10)
    assert checks[("not_null", "customer_id")][1] == sum("customer_id" in r for r in sample.rejected.values())
    for (_, _), (passed, failed) in checks.items():
        assert passed + failed <= 50


def test_unreadable_file_is_reported() -> None:
    with pytest.raises(UnreadableSourceError):
        read_source(b"this is not parquet", "parquet")


def test_raw_schema_is_typed(orders_contract) -> None:
    result = validate(orders_contract, read_source(orders(3).csv_bytes(), "csv"))
    assert result.valid.schema.field("amount").type == pa.decimal128(10, 2)
    assert result.valid.schema.field("order_date").type == pa.date32()


@pytest.mark.parametrize(
    "bad_day", [None, "2026-02-29", "2100-02-29", "2025-04-31", "2025-13-01", "2025-00-10", "2025-01-00"]
)
def test_only_real_days_are_dates(orders_contract, bad_day) -> None:
    """Leap years by the Gregorian rules (2100 is not one, 2400 is); one impossible day fails only its row."""
    lines = ["1,2,3.00,2028-02-29", "2,2,3.00,2025-12-31", "3,2,3.00,9999-12-31", "5,2,3.00,2400-02-29"]
    if bad_day:
        lines.append(f"4,2,3.00,{bad_day}")
    data = ("order_id,customer_id,amount,date\n" + "\n".join(lines) + "\n").encode()

    result = validate(orders_contract, read_source(data, "csv"))

    assert result.valid.column("order_date").to_pylist() == [
        dt.date(2028, 2, 29),
        dt.date(2025, 12, 31),
        dt.date(9999, 12, 31),
        dt.date(2400, 2, 29),
    ]
    rejected = result.rejected.to_pylist()
    assert [row["date"] for row in rejected] == ([bad_day] if bad_day else [])
    if bad_day:
        assert rejected[0][REJECT_REASON] == f"order_date: {bad_day!r} is not a valid date"
