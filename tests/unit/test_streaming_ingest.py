"""An upload read in many small batches becomes exactly what it becomes read in one: the same raw rows, the
same quarantine rows with the same numbers and reasons, the same checks, or the same error. Large files are
read this way (batches of 8 MiB), so every bad-input case and the samples are run through tiny batches here."""

from __future__ import annotations

import hashlib

import pyarrow as pa
import pytest

from lakehouse.contracts.registry import ContractRegistry
from lakehouse.devtools.sample_data import orders
from lakehouse.ingest.builtin import IngestReport, TablesInMemory, ingest_source
from lakehouse.ingest.errors import InputError, MissingColumnsError
from lakehouse.ingest.readers import BytesSource
from tests.data.bad.generate import Case, manifest

CONTRACTS = ContractRegistry.default()
OPERATOR_CASES = [case for case in manifest() if case.expect.refused is None]
SMALL_BLOCK = 200  # bytes: a few rows a batch; a CSV row longer than this is read again in larger blocks


def ingest(
    data: bytes, fmt: str, block_bytes: int, dataset: str = "orders", sha256: str | None = None
) -> tuple[IngestReport, pa.Table | None, pa.Table | None]:
    raw, quarantine = TablesInMemory(), TablesInMemory()
    report = ingest_source(
        CONTRACTS.get(dataset),
        BytesSource(data),
        fmt,
        "u-1",
        "s3://uploads/u-1",
        sha256,
        raw,
        quarantine,
        block_bytes,  # type: ignore[arg-type]
    )
    return report, raw.table, quarantine.table


def outcome(data: bytes, fmt: str, block_bytes: int, dataset: str, sha256: str | None) -> object:
    try:
        report, raw, quarantine = ingest(data, fmt, block_bytes, dataset, sha256)
    except InputError as error:
        return (error.reason, str(error))
    assert raw is not None
    return (
        report,
        raw.to_pylist(),
        # A batch's rejected rows may lack a column no row of that batch had; compare what each row holds.
        [{k: v for k, v in row.items() if v is not None} for row in quarantine.to_pylist()] if quarantine else [],
    )


@pytest.mark.parametrize("case", OPERATOR_CASES, ids=lambda case: case.name)
def test_each_bad_input_case_gives_the_same_outcome_in_small_batches(case: Case) -> None:
    data = case.data()
    sha256 = "0" * 64 if case.wrong_sha256 else hashlib.sha256(data).hexdigest()
    whole = outcome(data, case.format, 2**30, case.dataset, sha256)
    assert outcome(data, case.format, SMALL_BLOCK, case.dataset, sha256) == whole


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_a_sample_with_rejected_rows_gives_the_same_outcome_in_small_batches(fmt: str) -> None:
    sample = orders(500, invalid_every=7)
    data = {"csv": sample.csv_bytes, "json": sample.json_lines_bytes, "parquet": sample.parquet_bytes}[fmt]()

    in_batches = outcome(data, fmt, SMALL_BLOCK, "orders", None)

    assert in_batches == outcome(data, fmt, 2**30, "orders", None)
    report, _, rejected = in_batches  # type: ignore[misc]
    assert (report.valid_rows, report.rejected_rows) == (len(sample.valid), len(sample.rejected))
    assert {row["_source_row"] for row in rejected} == set(sample.rejected)


def test_malformed_csv_rows_keep_their_numbers_and_order_across_batches() -> None:
    rows = [f"{n},{n},1.00,2025-01-01" if n % 9 else f"{n},oops" for n in range(1, 120)]
    data = ("order_id,customer_id,amount,date\n" + "\n".join(rows) + "\n").encode()

    report, raw, quarantine = ingest(data, "csv", SMALL_BLOCK)

    assert quarantine is not None
    numbers = quarantine.column("_source_row").to_pylist()
    assert numbers == [n for n in range(1, 120) if n % 9 == 0]
    assert raw is not None and raw.column("order_id").to_pylist() == [n for n in range(1, 120) if n % 9]
    assert report.input_rows == 119


def test_a_header_that_does_not_match_fails_before_any_row_is_read() -> None:
    class HeaderOnly(BytesSource):
        def open(self):  # type: ignore[no-untyped-def]
            raise AssertionError("the rows were read")

    data = b"id,customer,total,day\n" + b"1,2,3.00,2025-01-01\n" * 1000

    with pytest.raises(MissingColumnsError, match="lacks required column"):
        ingest_source(
            CONTRACTS.get("orders"), HeaderOnly(data), "csv", "u-1", "s3://u", None, TablesInMemory(), TablesInMemory()
        )


def test_a_failure_in_a_later_batch_leaves_nothing_written() -> None:
    data = b"order_id,customer_id,amount,date\n" + b"1,2,3.00,2025-01-01\n" * 100 + b"2,2,\xe9,2025-01-01\n"
    raw, quarantine = TablesInMemory(), TablesInMemory()

    with pytest.raises(InputError, match=r"byte 0xe9 on line 102"):
        ingest_source(CONTRACTS.get("orders"), BytesSource(data), "csv", "u-1", "s3://u", None, raw, quarantine, 256)

    assert raw.table is None and quarantine.table is None
