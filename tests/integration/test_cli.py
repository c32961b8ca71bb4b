"""The `lakehouse` command end to end: a subprocess that talks to a real API process over HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lakehouse.devtools.sample_data import orders
from tests.utils.api_process import ApiProcess, running_api
from tests.utils.cli import CLI, cli_env, lakehouse
from tests.utils.operator_process import free_port
from tests.utils.stack import stack_env

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    namespace = stack_env("KUBECONFIG", "S3_ENDPOINT_URL", "ICEBERG_CATALOG_URI", "LAKEHOUSE_NAMESPACE")
    with running_api(namespace["LAKEHOUSE_NAMESPACE"], tmp_path_factory.mktemp("api") / "api.log") as process:
        yield process


@pytest.fixture
def orders_file(tmp_path: Path) -> Path:
    path = tmp_path / "orders.csv"
    path.write_bytes(orders(20, invalid_every=10, seed=31).csv_bytes())
    return path


def test_upload_wait_then_inspect_the_run_and_the_table(api: ApiProcess, orders_file: Path) -> None:
    uploaded = lakehouse(api, "upload", str(orders_file), "--dataset", "orders", "--wait")

    assert uploaded.returncode == 0, uploaded.stderr
    assert "Succeeded: 18 rows in bronze.orders" in uploaded.stdout and "2 rejected" in uploaded.stdout
    assert "sent" in uploaded.stderr and "Succeeded" in uploaded.stderr  # progress and live phases
    upload_id = uploaded.stderr.split("upload ", 1)[1].split()[0]

    run = lakehouse(api, "run", upload_id)
    assert run.returncode == 0 and "Succeeded" in run.stdout and "BronzeCommitted" in run.stdout

    as_json = json.loads(lakehouse(api, "--json", "run", upload_id).stdout)
    assert as_json["counts"]["written"] == 18
    snapshot = str(as_json["snapshotId"])

    runs = lakehouse(api, "runs", "--dataset", "orders", "--limit", "50")
    assert runs.returncode == 0 and upload_id in runs.stdout

    tables = lakehouse(api, "tables")
    assert "bronze.orders" in tables.stdout.split()

    table = lakehouse(api, "table", "bronze.orders", "--snapshots")
    assert table.returncode == 0 and upload_id in table.stdout and "order_date" in table.stdout

    as_of = lakehouse(api, "table", "bronze.orders", "--as-of", snapshot, "--rows", "3")
    assert as_of.returncode == 0 and f"snapshot   {snapshot}" in as_of.stdout and "ORDER_ID" in as_of.stdout

    datasets = lakehouse(api, "datasets")
    assert "orders" in datasets.stdout and "bronze.customers" in datasets.stdout


def test_failed_run_exits_non_zero_with_its_reason(api: ApiProcess, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"order_id,amount\n1,2.00\n")

    result = lakehouse(api, "upload", str(bad), "--dataset", "orders", "--wait")

    assert result.returncode == 1
    assert "failed: MissingColumns" in result.stderr


def test_retried_upload_with_the_same_key_returns_the_first_run(api: ApiProcess, orders_file: Path) -> None:
    key = f"cli-{time.time_ns()}"
    first = lakehouse(api, "--json", "upload", str(orders_file), "--dataset", "orders", "--idempotency-key", key)
    again = lakehouse(api, "--json", "upload", str(orders_file), "--dataset", "orders", "--idempotency-key", key)

    assert first.returncode == again.returncode == 0, first.stderr + again.stderr
    assert json.loads(first.stdout)["uploadId"] == json.loads(again.stdout)["uploadId"]
    assert json.loads(again.stdout)["replayed"] is True


@pytest.mark.parametrize(
    ("case", "code", "message"),
    [
        ("wrong-key", 2, "Forbidden (403)"),
        ("unknown-dataset", 2, "known datasets: customers, flights, orders"),
        ("unreachable", 3, "cannot reach the API"),
        ("missing-file", 2, "is not a file"),
    ],
)
def test_refusals_exit_with_distinct_codes(
    case: str, code: int, message: str, api: ApiProcess, orders_file: Path
) -> None:
    env = cli_env(api)
    dataset, file = "orders", str(orders_file)
    if case == "wrong-key":
        env["LAKEHOUSE_API_KEY"] = "lk-not-a-key"
    elif case == "unknown-dataset":
        dataset = "invoices"
    elif case == "unreachable":
        env["LAKEHOUSE_API_URL"] = f"http://127.0.0.1:{free_port()}"
    else:
        file = "/nonexistent.csv"

    result = lakehouse(api, "upload", file, "--dataset", dataset, env=env)

    assert result.returncode == code, result.stderr
    assert message in result.stderr


def test_config_file_is_used_and_flags_win(api: ApiProcess, tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(api.key + "\n")
    config = tmp_path / "config.toml"
    config.write_text(f'url = "{api.url}"\napi_key_file = "{key_file}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_API")}

    from_file = lakehouse(api, "--config", str(config), "datasets", env=env)
    flag_wins = lakehouse(api, "--config", str(config), "--url", f"http://127.0.0.1:{free_port()}", "datasets", env=env)

    assert from_file.returncode == 0 and "orders" in from_file.stdout
    assert flag_wins.returncode == 3


def test_runs_watch_refreshes_until_interrupted(api: ApiProcess) -> None:
    watch = subprocess.Popen(
        [CLI, "runs", "--watch", "--interval", "0.5", "--limit", "3"],
        env=cli_env(api),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        # A shell that starts the suite in the background hands SIGINT down ignored, and Python
        # keeps an ignored SIGINT ignored; restore the default so Ctrl-C means what it does for a user.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509 (one syscall, no locks)
    )
    headers = 0
    assert watch.stdout is not None
    deadline = time.monotonic() + 60
    while headers < 2 and time.monotonic() < deadline:
        headers += watch.stdout.readline().startswith("UPLOAD")
    watch.send_signal(signal.SIGINT)

    assert watch.wait(20) == 130
    assert headers == 2  # refreshed at least once
