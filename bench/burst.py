"""Benchmark: many uploads of one dataset at once, and small uploads one after another, through the API.

Runs this checkout's operator and API as processes of their own, in a namespace of their own (as the tests do),
against the local stack, and watches the runs from outside:

- `burst`: N uploads of R orders rows POSTed at once; wall time from the first POST to the last run Succeeded,
  runs lost (not Succeeded), rows lost or doubled in bronze (counted per upload id), the Iceberg commits that
  hold the runs and the operator's commit conflicts.
- `small`: N uploads of 1,000 rows one after another; each from its POST to Succeeded (p50, p95), and the
  median time from the POST to each phase as the watch saw it.

    eval "$(make -s env)"; .venv/bin/python bench/burst.py burst --uploads 100 --rows 10000 --workers 4 16
    .venv/bin/python bench/burst.py small --uploads 20

Results go to bench/results/burst.json and bench/results/small_files.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pyarrow.compute as pc
from _common import write_results
from kubernetes import client, config, watch
from pyiceberg.expressions import In
from urllib3.exceptions import ProtocolError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.utils: the operator and API processes

from lakehouse.bronze.writer import RUN_ID_PROPERTY
from lakehouse.catalog.connect import rest_catalog
from lakehouse.devtools.sample_data import orders
from lakehouse.k8s.ingestionrun import GROUP, PLURAL, VERSION
from lakehouse.settings import CatalogSettings, S3Settings
from tests.utils.api_checks import post_upload
from tests.utils.api_process import ApiProcess
from tests.utils.operator_process import OperatorProcess

TABLE = "bronze.orders"  # the orders contract's table, where API uploads land
TERMINAL = {"Succeeded", "Failed"}


@contextmanager
def platform(workdir: Path, operator_env: dict[str, str]) -> Iterator[tuple[OperatorProcess, httpx.Client]]:
    """A namespace with this checkout's operator and API; the API's client."""
    core = client.CoreV1Api()
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    operator = OperatorProcess(namespace, workdir / "operator.log", operator_env, metrics=True)
    api = ApiProcess(namespace, workdir / "api.log", {"LAKEHOUSE_API_RATE_LIMIT_BURST": "1000"})
    try:
        operator.start()
        api.start()
        with httpx.Client(base_url=api.url, headers=api.headers, timeout=120) as http:
            yield operator, http
    finally:
        api.stop()
        operator.stop()
        core.delete_namespace(namespace)


class PhaseWatch:
    """When each run of the namespace was first seen in each phase (monotonic seconds), from a watch."""

    def __init__(self, namespace: str) -> None:
        self.seen: dict[str, dict[str, float]] = {}
        self._watch = watch.Watch()
        self._changed = threading.Condition()
        api = client.CustomObjectsApi()
        stream = self._watch.stream(api.list_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL)
        self._thread = threading.Thread(target=self._follow, args=(stream,), daemon=True)
        self._thread.start()

    def _follow(self, stream: Any) -> None:
        with contextlib.suppress(ProtocolError):  # the stream cut when the watch stops
            for event in stream:
                run = event["object"]
                phase = (run.get("status") or {}).get("phase")
                if phase:
                    with self._changed:
                        self.seen.setdefault(run["metadata"]["name"], {}).setdefault(phase, time.monotonic())
                        self._changed.notify_all()

    def wait_all(self, runs: set[str], timeout: float) -> None:
        with self._changed:
            done = self._changed.wait_for(lambda: all(TERMINAL & self.seen.get(r, {}).keys() for r in runs), timeout)
        if not done:
            raise TimeoutError(f"runs not finished after {timeout}s")

    def stop(self) -> None:
        self._watch.stop()


def bronze_counts(upload_ids: set[str]) -> dict[str, int]:
    table = rest_catalog(CatalogSettings(), S3Settings()).load_table(TABLE)
    rows = table.scan(row_filter=In("upload_id", upload_ids), selected_fields=("upload_id",)).to_arrow()
    return {row["values"]: row["counts"] for row in pc.value_counts(rows["upload_id"]).to_pylist()}


def commits_of(runs: set[str]) -> int:
    table = rest_catalog(CatalogSettings(), S3Settings()).load_table(TABLE)
    # Split here rather than with writer.snapshot_run_ids, so the script also measures checkouts from before it.
    summaries = [s.summary.additional_properties for s in table.snapshots() if s.summary]
    named = [set(summary.get(RUN_ID_PROPERTY, "").split(",")) for summary in summaries]
    return sum(1 for ids in named if runs & ids)


def burst(uploads: int, rows: int, workers: int, group_max_runs: int) -> dict[str, Any]:
    files = [orders(rows, invalid_every=20, seed=i, first_order_id=i * rows + 1) for i in range(uploads)]
    bodies = [sample.csv_bytes() for sample in files]
    env = {"LAKEHOUSE_OPERATOR_WORKERS": str(workers), "LAKEHOUSE_GROUP_COMMIT_MAX_RUNS": str(group_max_runs)}
    with tempfile.TemporaryDirectory() as workdir, platform(Path(workdir), env) as (operator, http):
        phases = PhaseWatch(operator.namespace)
        started = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            responses = list(pool.map(lambda body: post_upload(http, body, dataset="orders"), bodies))
        accepted = time.monotonic() - started
        names = {r.raise_for_status().json()["runName"] for r in responses}
        phases.wait_all(names, timeout=1800)
        wall = max(phases.seen[name][next(iter(TERMINAL & phases.seen[name].keys()))] for name in names) - started
        phases.stop()
        conflict = {"dataset": "orders", "cause": "conflict"}
        conflicts = operator.metric("lakehouse_iceberg_commit_retries_total", conflict)
        succeeded = sum("Succeeded" in phases.seen[name] for name in names)
    upload_ids = {r.json()["uploadId"] for r in responses}
    counted = bronze_counts(upload_ids)
    expected = {r.json()["uploadId"]: len(sample.valid) for r, sample in zip(responses, files, strict=True)}
    return {
        "uploads": uploads,
        "rows_each": rows,
        "workers": workers,
        "group_commit_max_runs": group_max_runs,
        "uploads_accepted_s": round(accepted, 2),
        "wall_s": round(wall, 2),
        "rows_per_s": round(uploads * rows / wall),
        "runs_lost": uploads - succeeded,
        "rows_lost": sum(max(n - counted.get(u, 0), 0) for u, n in expected.items()),
        "rows_doubled": sum(max(counted.get(u, 0) - n, 0) for u, n in expected.items()),
        "iceberg_commits": commits_of(names),
        "commit_conflicts": conflicts,
    }


def small(uploads: int, rows: int, workers: int) -> dict[str, Any]:
    body = orders(rows, invalid_every=20).csv_bytes()
    env = {"LAKEHOUSE_OPERATOR_WORKERS": str(workers)}
    totals: list[float] = []
    by_phase: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as workdir, platform(Path(workdir), env) as (operator, http):
        phases = PhaseWatch(operator.namespace)
        warm_up = post_upload(http, body, dataset="orders").raise_for_status().json()["runName"]
        phases.wait_all({warm_up}, timeout=120)  # imports, the table, connections
        for _ in range(uploads):
            started = time.monotonic()
            name = post_upload(http, body, dataset="orders").raise_for_status().json()["runName"]
            phases.wait_all({name}, timeout=120)
            seen = phases.seen[name]
            totals.append(seen["Succeeded"] - started)
            for phase, at in seen.items():
                by_phase.setdefault(phase, []).append(at - started)
        phases.stop()
    quantiles = statistics.quantiles(totals, n=20)
    return {
        "uploads": uploads,
        "rows": rows,
        "workers": workers,
        "p50_s": round(statistics.median(totals), 3),
        "p95_s": round(quantiles[18], 3),
        "median_s_from_post_to_phase": {phase: round(statistics.median(t), 3) for phase, t in by_phase.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=["burst", "small"])
    parser.add_argument("--uploads", type=int, default=100)
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--workers", type=int, nargs="+", default=[4])
    parser.add_argument("--group-max-runs", type=int, nargs="+", default=[100])
    args = parser.parse_args()
    config.load_kube_config()
    results = []
    for workers in args.workers:
        for group_max_runs in args.group_max_runs if args.scenario == "burst" else [0]:
            if args.scenario == "burst":
                result = burst(args.uploads, args.rows or 10_000, workers, group_max_runs)
            else:
                result = small(args.uploads, args.rows or 1_000, workers)
            print(json.dumps(result), flush=True)
            results.append(result)
    if args.scenario == "burst":
        write_results("burst", "N uploads of one dataset POSTed at once, first POST -> last Succeeded", results)
    else:
        write_results("small_files", "1,000-row uploads one after another, POST -> Succeeded", results)


if __name__ == "__main__":
    main()
