"""lakehouse.nifi.step: what NiFi's ExecuteStreamCommand gets back for an upload."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import tarfile

import pyarrow.parquet as pq

from lakehouse.contracts.model import DatasetContract
from lakehouse.contracts.registry import DEFAULT_CONTRACTS_DIR, ContractRegistry
from lakehouse.devtools.sample_data import orders
from lakehouse.ingest.builtin import ingest_bytes
from lakehouse.nifi.deploy import DEFAULT_FLOW
from lakehouse.nifi.step import run_step
from lakehouse.nifi.step_result import QUARANTINE_ENTRY, RAW_ENTRY, RESULT_ENTRY, StepResult

CONTRACTS = ContractRegistry.from_directory(DEFAULT_CONTRACTS_DIR)


def test_entries_hold_what_the_builtin_engine_writes() -> None:
    sample = orders(50, invalid_every=5)
    data = sample.csv_bytes()

    entries = run_step(data, "orders", "csv", "u-1", None, CONTRACTS)

    expected = ingest_bytes(CONTRACTS.get("orders"), data, "csv", "u-1", "upload u-1")
    assert set(entries) == {RAW_ENTRY, QUARANTINE_ENTRY, RESULT_ENTRY}
    assert pq.read_table(io.BytesIO(entries[RAW_ENTRY])).equals(expected.raw)
    assert expected.quarantine is not None
    assert pq.read_table(io.BytesIO(entries[QUARANTINE_ENTRY])).equals(expected.quarantine)
    result = StepResult.from_json(entries[RESULT_ENTRY])
    assert (result.input_rows, result.valid_rows, result.rejected_rows) == (50, 40, 10)
    assert result.contract_version == CONTRACTS.get("orders").version
    assert result.error is None
    assert [c.as_result() for c in result.checks] == expected.report.checks


def test_all_valid_file_has_no_quarantine_entry() -> None:
    entries = run_step(orders(10).csv_bytes(), "orders", "csv", "u-2", None, CONTRACTS)
    assert set(entries) == {RAW_ENTRY, RESULT_ENTRY}


def test_files_that_cannot_be_ingested_get_a_reason_not_a_crash() -> None:
    cases = {
        ("orders", b"order_id,amount\n1,2\n", None): ("MissingColumns", "customer_id"),
        ("invoices", b"a\n1\n", None): ("UnknownDataset", "invoices"),
        ("orders", orders(3).csv_bytes(), "0" * 64): ("ChecksumMismatch", "sha256"),
    }
    for (dataset, data, sha256), (reason, fragment) in cases.items():
        entries = run_step(data, dataset, "csv", "u-3", sha256, CONTRACTS)
        assert set(entries) == {RESULT_ENTRY}
        result = StepResult.from_json(entries[RESULT_ENTRY])
        assert result.error is not None and result.error.reason == reason
        assert fragment in result.error.message


def flow_command(attributes: dict[str, str]) -> list[str]:
    """The arguments exactly as the flow's ExecuteStreamCommand passes them ("Command Arguments" split on ';', empty
    arguments dropped as NiFi does)."""
    flow = json.loads(DEFAULT_FLOW.read_text())
    (validate,) = [p for p in flow["flowContents"]["processors"] if p["identifier"] == "validate"]
    arguments = validate["properties"]["Command Arguments"].replace("#{contracts.dir}", str(DEFAULT_CONTRACTS_DIR))
    for name, value in attributes.items():
        arguments = arguments.replace("${" + name + "}", value)
    assert "${" not in arguments, f"an attribute of the flow's command is not set here: {arguments}"
    return [sys.executable, *[a for a in arguments.split(";") if a]]


def test_the_command_nifi_runs_writes_a_tar_to_stdout() -> None:
    data = orders(20, invalid_every=4).csv_bytes()
    # A run without a sha256, from an operator that sends no contract: the contracts directory's is used.
    attributes = {
        "dataset": "orders",
        "source.format": "csv",
        "upload.id": "u-4",
        "source.sha256": "",
        "run.uid": "0b7c1f6e-2c1a-4c7e-9a55-3f1f0e1d2c3b",
        "contract": "",
    }
    command = flow_command(attributes)

    done = subprocess.run(command, input=data, capture_output=True, check=True)

    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as tar:
        names = tar.getnames()
        result = StepResult.from_json(tar.extractfile(RESULT_ENTRY).read())  # type: ignore[union-attr]
    assert sorted(names) == sorted([RAW_ENTRY, QUARANTINE_ENTRY, RESULT_ENTRY])
    assert result.error is None, result.error
    assert (result.valid_rows, result.rejected_rows) == (15, 5)
    assert result.run_uid == attributes["run.uid"]


def test_the_contract_the_operator_sends_is_used_for_a_dataset_nifi_has_no_file_of() -> None:
    """A Dataset resource's contract reaches NiFi only with the run: the step checks the file against it."""
    body = CONTRACTS.get("orders").model_dump(mode="json") | {"name": "orders_from_a_dataset", "version": 7}
    body["columns"] = [c for c in body["columns"] if c["name"] != "customer_id"]  # a contract of its own
    contract = DatasetContract.model_validate(body)
    attributes = {
        "dataset": "orders_from_a_dataset",
        "source.format": "csv",
        "upload.id": "u-5",
        "source.sha256": "",
        "run.uid": "0b7c1f6e-2c1a-4c7e-9a55-3f1f0e1d2c3c",
        "contract": base64.b64encode(contract.model_dump_json().encode()).decode(),
    }

    done = subprocess.run(flow_command(attributes), input=orders(20).csv_bytes(), capture_output=True, check=True)

    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as tar:
        result = StepResult.from_json(tar.extractfile(RESULT_ENTRY).read())  # type: ignore[union-attr]
        raw = pq.read_table(io.BytesIO(tar.extractfile(RAW_ENTRY).read()))  # type: ignore[union-attr]
    assert result.error is None, result.error
    assert result.contract_version == 7 and result.valid_rows == 20
    assert "customer_id" not in raw.column_names and "order_id" in raw.column_names


def test_a_contract_sent_without_its_defaults_reads_back_the_same() -> None:
    """The operator sends NiFi the run's contract without the fields at their defaults (engines/nifi.py), so an
    older NiFi image reads it; the step must still see exactly the contract the run pinned."""
    for name in CONTRACTS.names():
        contract = CONTRACTS.get(name)
        sent = contract.model_dump_json(exclude_defaults=True)
        assert DatasetContract.model_validate_json(sent) == contract
        assert "spark_threshold_mb" not in sent  # an option newer than the oldest flow, at its default
