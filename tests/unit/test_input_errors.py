"""A file that cannot be ingested fails its run at once with a precise reason, in the built-in engine
and in NiFi's step alike; values that cannot be converted reject their row; only server faults are retried."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError
from lakehouse_operator.engines.base import IngestOutcome, RunContext, RunRejectedError
from lakehouse_operator.engines.builtin import BuiltinIngestEngine

from lakehouse.contracts.registry import ContractRegistry
from lakehouse.nifi.step import run_step
from lakehouse.nifi.step_result import QUARANTINE_ENTRY, RESULT_ENTRY, StepResult
from lakehouse.storage.s3 import S3Location

CONTRACTS = ContractRegistry.default()
SOURCE = S3Location("uploads", "orders/2026-12-01/u-1/data")


def parquet_table(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def parquet(columns: dict[str, pa.Array]) -> bytes:
    return parquet_table(pa.table(columns))


ORDER_COLUMNS = {
    "order_id": pa.array([1, 2], pa.int64()),
    "customer_id": pa.array([5, 6], pa.int64()),
    "amount": pa.array(["3.00", "4.00"]),
    "date": pa.array(["2025-01-01", "2025-01-02"]),
}


class ObjectStore:
    """The S3 calls the built-in engine makes for a small file; `fault` fails reads as a broken server would."""

    def __init__(self, fault: Exception | None = None) -> None:
        self.objects: dict[S3Location, bytes] = {}
        self.fault = fault

    def head_object(self, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803 - boto3's names
        return {"ContentLength": len(self.objects[S3Location(Bucket, Key)])}

    def get_object(self, Bucket: str, Key: str, Range: str | None = None) -> dict[str, Any]:  # noqa: N803
        if self.fault:
            raise self.fault
        data = self.objects[S3Location(Bucket, Key)]
        if Range:  # bytes=first-last
            first, last = (int(n) for n in Range.removeprefix("bytes=").split("-"))
            data = data[first : last + 1]
        return {"Body": io.BytesIO(data)}

    def list_multipart_uploads(self, **_: Any) -> dict[str, Any]:
        return {"Uploads": []}

    def put_object(self, Bucket: str, Key: str, Body: bytes, **_: Any) -> None:  # noqa: N803
        self.objects[S3Location(Bucket, Key)] = Body


def builtin_ingest(data: bytes, fmt: str, store: ObjectStore | None = None) -> tuple[IngestOutcome, ObjectStore]:
    store = store or ObjectStore()
    store.objects[SOURCE] = data
    run = RunContext(
        name="u-1",
        namespace="ns",
        upload_id="u-1",
        dataset="orders",
        contract=CONTRACTS.get("orders"),
        source_uri=SOURCE.uri,
        source_format=fmt,
        source_sha256=None,
        processing_date=dt.date(2026, 12, 1),
        ingest_timestamp=dt.datetime(2026, 12, 1),
        target_table="bronze.orders",
        owner={},
    )
    outcome = BuiltinIngestEngine(store, "raw", "quarantine").ingest(run)
    assert isinstance(outcome, IngestOutcome)
    return outcome, store


def nifi_step(data: bytes, fmt: str) -> tuple[StepResult, dict[str, bytes]]:
    entries = run_step(data, "orders", fmt, "u-1", None, CONTRACTS)
    return StepResult.from_json(entries[RESULT_ENTRY]), entries


FILE_ERRORS = {
    "csv-duplicate-header": (
        b"order_id,customer_id,amount,date,order_id\n1,2,3.00,2025-01-01,1\n",
        "csv",
        "DuplicateColumns",
        "'order_id' at positions 1, 5",
    ),
    "parquet-list-column": (
        parquet({**ORDER_COLUMNS, "customer_id": pa.array([[5], [6]], pa.list_(pa.int64()))}),
        "parquet",
        "UnsupportedType",
        "column 'customer_id' is of type list<element: int64> in the file, the contract wants long",
    ),
    "parquet-duplicate-column": (
        parquet_table(pa.Table.from_arrays([*ORDER_COLUMNS.values(), pa.array([1, 2])], [*ORDER_COLUMNS, "amount"])),
        "parquet",
        "DuplicateColumns",
        "'amount'",
    ),
    "csv-latin-1": (
        b"order_id,customer_id,amount,date,note\n1,2,3.00,2025-01-01,ok\n2,2,3.00,2025-01-01,caf\xe9\n",
        "csv",
        "InvalidEncoding",
        "byte 0xe9 on line 3",
    ),
    "json-latin-1": (
        b'{"order_id": 1, "customer_id": 2, "amount": 3.5, "date": "2025-01-02", "note": "caf\xe9"}\n',
        "json",
        "InvalidEncoding",
        "line 1",
    ),
    "csv-semicolons": (
        b"order_id;customer_id;amount;date\n1;2;3.00;2025-01-01\n",
        "csv",
        "WrongDelimiter",
        "separates its fields with ';'",
    ),
    "csv-renamed-column": (
        b"order_id,customer_id,amount,order_date\n1,2,3.00,2025-01-01\n",
        "csv",
        "MissingColumns",
        "'order_date' is what the contract renames 'date' to",
    ),
}


@pytest.mark.parametrize(("data", "fmt", "reason", "fragment"), FILE_ERRORS.values(), ids=FILE_ERRORS.keys())
def test_a_file_error_fails_at_once_with_the_same_reason_in_both_engines(
    data: bytes, fmt: str, reason: str, fragment: str
) -> None:
    with pytest.raises(RunRejectedError) as rejected:
        builtin_ingest(data, fmt)
    step, entries = nifi_step(data, fmt)

    assert rejected.value.reason == reason
    assert fragment in rejected.value.message
    assert list(entries) == [RESULT_ENTRY] and step.error is not None
    assert (step.error.reason, step.error.message) == (reason, rejected.value.message)


def test_json_values_no_type_accepts_reject_their_rows_not_the_file() -> None:
    data = (
        b'{"order_id": 1, "customer_id": {"id": 7}, "amount": 3.5, "date": "2025-01-02", "meta": {"app": "x"}}\n'
        b'{"order_id": 2, "customer_id": 8, "amount": NaN, "date": "2025-01-02", "meta": {"app": "x"}}\n'
        b'{"order_id": 3, "customer_id": 9, "amount": [1, 2], "date": "2025-01-02", "meta": {"app": "x"}}\n'
        b'{"order_id": 4, "customer_id": 9, "amount": 4.5, "date": "2025-01-02", "meta": {"app": "x"}}\n'
    )

    outcome, store = builtin_ingest(data, "json")
    step, entries = nifi_step(data, "json")

    assert (outcome.input_rows, outcome.valid_rows, outcome.rejected_rows) == (4, 1, 3)
    assert (step.input_rows, step.valid_rows, step.rejected_rows) == (4, 1, 3)
    assert outcome.quarantine_uri is not None
    quarantine = pq.read_table(io.BytesIO(store.objects[S3Location.parse(outcome.quarantine_uri)]))
    assert quarantine.equals(pq.read_table(io.BytesIO(entries[QUARANTINE_ENTRY])))
    reasons = {row["_source_row"]: row["_reject_reason"] for row in quarantine.to_pylist()}
    assert reasons == {
        1: "customer_id: '{\"id\": 7}' is not a valid long",
        2: "amount: 'NaN' is not a valid decimal(10,2)",
        3: "amount: '[1, 2]' is not a valid decimal(10,2)",
    }


def test_an_error_the_readers_do_not_know_still_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same bytes fail the same way on every attempt, whatever the error: retrying cannot help."""

    def unexpected(*_: Any) -> None:
        raise pa.ArrowNotImplementedError("Unsupported cast from something new")

    monkeypatch.setattr("lakehouse.ingest.builtin.open_batches", unexpected)
    data = b"order_id,customer_id,amount,date\n1,2,3.00,2025-01-01\n"

    with pytest.raises(RunRejectedError) as rejected:
        builtin_ingest(data, "csv")
    step, _ = nifi_step(data, "csv")

    assert rejected.value.reason == "UnsupportedInput"
    assert "ArrowNotImplementedError: Unsupported cast from something new" in rejected.value.message
    assert step.error is not None and step.error.reason == "UnsupportedInput"


def test_a_server_fault_is_not_an_input_error() -> None:
    """It propagates as it is, so the operator retries the step with backoff."""
    fault = ClientError({"Error": {"Code": "InternalError"}, "ResponseMetadata": {"HTTPStatusCode": 500}}, "GetObject")

    with pytest.raises(ClientError):
        builtin_ingest(b"order_id,customer_id,amount,date\n", "csv", ObjectStore(fault))
