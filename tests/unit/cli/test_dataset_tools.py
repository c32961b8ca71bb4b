"""`lakehouse dataset infer` and `lakehouse dataset check` on real files: nothing but the file is read, and
nothing is written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from lakehouse_cli.exits import EXIT_OK, EXIT_REFUSED, EXIT_RUN_FAILED
from lakehouse_cli.main import main

from lakehouse.contracts.model import DatasetContract
from lakehouse.contracts.registry import DEFAULT_CONTRACTS_DIR
from tests.utils.flights import flights_csv, flights_head


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["--url", "http://127.0.0.1:9", *argv])  # no API: these commands must not need one
    out, err = capsys.readouterr()
    return code, out, err


def inferred(capsys: pytest.CaptureFixture[str], path: Path, *options: str) -> dict[str, Any]:
    code, out, err = run(capsys, "dataset", "infer", str(path), *options)
    assert code == EXIT_OK, err
    document = yaml.safe_load(out)
    DatasetContract.model_validate(document)  # what infer prints loads as it is
    return document


def test_infer_writes_the_packaged_flights_contract(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "flights.csv"
    path.write_bytes(flights_csv())

    document = inferred(capsys, path)

    assert document == yaml.safe_load((DEFAULT_CONTRACTS_DIR / "flights.yaml").read_text())
    assert document["null_markers"] == ["NA"]
    assert document["bronze"]["date_column"] == "time_hour"
    assert {c["name"]: c.get("rename") for c in document["columns"][:3]} == {
        "year": "source_year",
        "month": "source_month",
        "day": "source_day",
    }
    dep_time = next(c for c in document["columns"] if c["name"] == "dep_time")
    assert dep_time == {"name": "dep_time", "type": "long"}  # `NA` in 8,255 rows: optional


def test_infer_reads_dialects_formats_and_awkward_names(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "Shop Sales 2025.csv"
    path.write_text(
        "Order Id;zip;paid;amount;sold on;created at;note\n"
        "1;02134;true;1.5;31/01/2025;31/01/2025 10:00;NULL\n"
        "2;10115;FALSE;2;01/02/2025;01/02/2025 11:30;\n"
        "3;75001;true;NULL;13/02/2025;13/02/2025 12:00;x\n"
    )

    document = inferred(capsys, path)

    assert document["name"] == "shop_sales_2025" and document["csv"] == {"delimiter": ";"}
    assert document["null_markers"] == ["NULL"]
    columns = {c["name"]: c for c in document["columns"]}
    assert columns["Order Id"] == {"name": "Order Id", "type": "long", "required": True, "rename": "order_id"}
    assert columns["zip"]["type"] == "string"  # leading zeros: an identifier, not a number
    assert columns["paid"]["type"] == "boolean" and columns["amount"] == {"name": "amount", "type": "double"}
    assert columns["sold on"]["format"] == "%d/%m/%Y" and columns["sold on"]["type"] == "date"
    assert columns["created at"]["format"] == "%d/%m/%Y %H:%M" and columns["created at"]["type"] == "timestamp"
    assert document["bronze"]["date_column"] == "sold_on"  # required, and its name says it is a date
    assert document["bronze"]["partitioning"] == [{"column": "sold_on", "transform": "month"}]


def test_infer_json_lines(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"id": 1, "at": "2025-01-01T10:00:00Z"}\n{"id": 2, "at": "2025-01-02T10:00:00+01:00", "x": 1}\n')

    columns = {c["name"]: c for c in inferred(capsys, path)["columns"]}

    assert columns == {
        "id": {"name": "id", "type": "long", "required": True},
        "at": {"name": "at", "type": "timestamp", "required": True},
        "x": {"name": "x", "type": "long"},  # missing from a line: optional
    }


def test_check_reports_valid_and_quarantined_rows_and_why(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "flights-head.csv"
    path.write_bytes(flights_head(3000))
    strict = yaml.safe_load((DEFAULT_CONTRACTS_DIR / "flights.yaml").read_text())
    del strict["null_markers"]
    contract = tmp_path / "flights-without-markers.yaml"
    contract.write_text(yaml.safe_dump(strict))

    code, out, _ = run(capsys, "--json", "dataset", "check", str(path), "--contract", str(contract), "--show", "2")

    assert code == EXIT_OK
    report = json.loads(out)
    assert (report["rows"], report["valid"], report["quarantined"]) == (3000, 2960, 40)
    assert report["quarantineSample"][0] == {
        "row": 472,
        "reason": "arr_delay: 'NA' is not a valid long; air_time: 'NA' is not a valid long",
    }
    assert len(report["quarantineSample"]) == 2
    assert {(c["check_name"], c["column"]): c["failed"] for c in report["failedChecks"]}[
        ("type_long", "arr_delay")
    ] == 40
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flights-head.csv", "flights-without-markers.yaml"]

    code, out, _ = run(capsys, "dataset", "check", str(path), "--dataset", "flights")
    assert code == EXIT_OK
    assert out.splitlines()[0] == (
        "flights-head.csv against the flights contract (version 1): 3000 rows, 3000 valid, 0 quarantined"
    )


def test_check_says_when_a_run_would_fail(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "flights-head.csv"
    path.write_bytes(flights_head(1000))
    strict = yaml.safe_load((DEFAULT_CONTRACTS_DIR / "flights.yaml").read_text())
    strict |= {"max_file_bytes": 1000}
    contract = tmp_path / "strict.yaml"
    contract.write_text(yaml.safe_dump(strict))

    code, out, _ = run(capsys, "dataset", "check", str(path), "--contract", str(contract))
    assert code == EXIT_RUN_FAILED
    assert out.startswith("a run of flights-head.csv would fail: FileTooLarge: the file is 90886 bytes")

    code, _, err = run(capsys, "dataset", "check", str(path), "--dataset", "no_such_dataset")
    assert code == EXIT_REFUSED and "unknown dataset 'no_such_dataset'" in err
