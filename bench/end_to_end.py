"""Benchmark: uploads end to end on the local stack, from the HTTP upload to Succeeded with the rows read back
from bronze, each scenario beside its reference in the same run (issue #13).

1. small files: sequential 1,000-row uploads per engine path (built-in + Arrow, built-in + Spark local,
   NiFi + Arrow when NiFi runs), p50/p95, and where the time goes, phase by phase;
2. large files: orders CSVs of 1.5 M (and 15 M) rows through built-in + Arrow, against pyarrow reading the
   same CSV with the contract's types and writing zstd Parquet, timed just before;
3. burst: 100 uploads of 10,000 rows sent at once: wall time, runs lost, duplicate rows, Iceberg commit retries;
4. baseline, the seed's design: one spark-submit per file (built-in + Spark local) on scenarios 1 and 2;
5. memory: the API's RSS while a 1 GiB CSV streams through it; the operator's during the large files.

Every scenario gets a fresh namespace, operator and API (this checkout's code, bench/_stack.py), so each peak
RSS is its own. Results: bench/results/end_to_end.{json,md,png}. Needs the stack (`make up`, NiFi optional):

    eval "$(make -s env)"; .venv/bin/python bench/end_to_end.py [--quick] [--only small large burst memory]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _common import RESULTS_DIR, machine, phase_seconds, write_results
from _data import orders_csv, pyarrow_reference_seconds
from _report import write_report
from _stack import BenchStack, RssSampler, bench_stack
from ingest_engines import nifi_rss_mib
from lakehouse_cli.multipart import file_chunks

from lakehouse.devtools.large_orders import OrdersCsv
from lakehouse.devtools.sample_data import orders

MiB = 2**20
SUCCEEDED = {"Succeeded"}
PHASE_ORDER = ["Created", "Pending", "Ingesting", "RawReady", "Transforming", "Succeeded"]
PATHS = {
    "builtin+arrow": {"ingest_engine": "builtin", "transform_engine": "arrow"},
    "builtin+spark (seed's design: spark-submit per file)": {"ingest_engine": "builtin", "transform_engine": "spark"},
    "nifi+arrow": {"ingest_engine": "nifi", "transform_engine": "arrow"},
}
SIZES = {
    "full": {"small": {"builtin+arrow": 20, "builtin+spark": 5, "nifi+arrow": 20}, "large": [1_500_000, 15_000_000],
             "spark_large": [1_500_000], "burst": (100, 10_000), "memory_gib": 1.0},
    "quick": {"small": {"builtin+arrow": 10, "builtin+spark": 2, "nifi+arrow": 5}, "large": [1_500_000],
              "spark_large": [], "burst": (20, 10_000), "memory_gib": 0.25},
}  # fmt: skip


def engines_of(path: str) -> dict[str, str]:
    ingest, transform = path.split(" ", maxsplit=1)[0].split("+")
    return {"ingest": ingest, "transform": transform}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def breakdown(stack: BenchStack, name: str, started: float, accepted: float) -> dict[str, float]:
    """Seconds in each step: the upload (until the API answered), then each phase, from when the watch first
    saw the run in it to when it first saw the next ("Created": the run before the operator's first status)."""
    seen = stack.phases.seen[name]
    steps = {"upload": accepted - started}
    order = [phase for phase in PHASE_ORDER if phase in seen]
    for phase, following in itertools.pairwise(order):
        steps[phase] = seen[following] - seen[phase]
    return {step: round(seconds, 3) for step, seconds in steps.items()}


def one_upload(stack: BenchStack, data: bytes, path: str, timeout: float) -> dict[str, Any]:
    started = time.perf_counter()
    name = stack.upload([data], len(data), engines_of(path))
    accepted = time.perf_counter()
    status = stack.phases.wait(name, SUCCEEDED, timeout)
    seconds = time.perf_counter() - started
    read = stack.rows_by_run([name])[name]
    assert read == status["counts"]["valid"], f"{name}: {read} rows read, {status['counts']['valid']} valid"
    return {"run": name, "seconds": round(seconds, 3), "steps": breakdown(stack, name, started, accepted),
            "condition_steps": phase_seconds(status)}  # fmt: skip


def small_files(counts: dict[str, int], nifi: bool, paths: list[str] | None = None) -> list[dict[str, Any]]:
    data = orders(1_000, seed=1).csv_bytes()
    results = []
    for path in PATHS:
        short = path.split(" ")[0]
        if paths is not None and short not in paths:
            continue
        if short == "nifi+arrow" and not nifi:
            print("NiFi is not running: nifi+arrow skipped")
            continue
        timeout = 600 if "spark" in path else 120
        with bench_stack("small") as stack:
            one_upload(stack, data, path, timeout)  # warm-up: first imports, NiFi's flow, the table's creation
            runs = [one_upload(stack, data, path, timeout) for _ in range(counts[short])]
            peaks = stack.peak_rss_mib()
        seconds = [run["seconds"] for run in runs]
        steps = {
            step: round(statistics.median(run["steps"].get(step, 0) for run in runs), 3) for step in runs[0]["steps"]
        }
        results.append({
            "path": path, "rows": 1_000, "bytes": len(data), "uploads": len(runs),
            "p50_seconds": round(statistics.median(seconds), 3), "p95_seconds": round(percentile(seconds, 0.95), 3),
            "median_steps_seconds": steps, "peak_rss_mib": peaks, "runs": runs,
        })  # fmt: skip
        print(f"small {path}: p50 {results[-1]['p50_seconds']} s, p95 {results[-1]['p95_seconds']} s, {steps}")
    return results


def large_files(sizes: list[int], spark_sizes: list[int], files_dir: Path) -> list[dict[str, Any]]:
    results = []
    for rows in sizes:
        csv_path = orders_csv(files_dir / f"orders-{rows}.csv", rows)
        size = csv_path.stat().st_size
        references = [pyarrow_reference_seconds(csv_path, files_dir / "reference.parquet") for _ in range(3)]
        reference = statistics.median(references)
        for path in PATHS:
            short = path.split(" ")[0]
            if short == "nifi+arrow" or (short == "builtin+spark" and rows not in spark_sizes):
                continue
            with bench_stack("large") as stack, RssSampler(stack.pids()) as sampler:
                started = time.perf_counter()
                name = stack.upload(file_chunks(str(csv_path)), size, engines_of(path))
                uploaded = time.perf_counter() - started
                status = stack.phases.wait(name, SUCCEEDED, timeout=3600)
                seconds = time.perf_counter() - started
                read = stack.rows_by_run([name])[name]
                peaks = stack.peak_rss_mib()
            assert read == rows, f"{name}: {read} rows read back, {rows} uploaded"
            results.append({
                "path": path, "rows": rows, "bytes": size, "seconds": round(seconds, 2),
                "upload_seconds": round(uploaded, 2), "rows_per_second": round(rows / seconds),
                "mb_per_second": round(size / 1e6 / seconds, 1), "reference_seconds": round(reference, 2),
                "reference_runs_seconds": [round(r, 2) for r in references],
                "ratio_to_reference": round(reference / seconds, 3), "condition_steps": phase_seconds(status),
                "peak_rss_mib": peaks, "sampled_peak_rss_mib": {k: round(v) for k, v in sampler.peak_mib.items()},
            })  # fmt: skip
            print(f"large {rows} {path}: {seconds:.1f} s, reference {reference:.2f} s, peaks {peaks}")
    return results


def burst(uploads: int, rows: int) -> dict[str, Any]:
    files = [orders(rows, seed=i, first_order_id=1 + i * rows).csv_bytes() for i in range(uploads)]
    with bench_stack("burst") as stack, RssSampler(stack.pids()) as sampler:
        path = "builtin+arrow"
        warm_up = orders(100, seed=uploads, first_order_id=1 + uploads * rows).csv_bytes()
        stack.phases.wait(stack.upload([warm_up], len(warm_up), engines_of(path)), SUCCEEDED, 120)  # creates the table
        retries_before = stack.operator_metric_total("lakehouse_iceberg_commit_retries_total")
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=16) as pool:
            names = list(pool.map(lambda data: stack.upload([data], len(data), engines_of(path)), files))
        accepted = time.perf_counter() - started
        lost = 0
        for name in names:
            try:
                stack.phases.wait(name, SUCCEEDED, timeout=max(60.0, 1800 - (time.perf_counter() - started)))
            except (RuntimeError, TimeoutError) as error:
                print(f"lost: {error}")
                lost += 1
        wall = time.perf_counter() - started
        read = stack.rows_by_run(names)
        valid = {name: (stack.phases.statuses[name].get("counts") or {}).get("valid", 0) for name in names}
        retries = stack.operator_metric_total("lakehouse_iceberg_commit_retries_total") - retries_before
        retry_causes = stack.operator_metric_by("lakehouse_iceberg_commit_retries_total", "cause")
        commits = stack.snapshots() - 1  # the warm-up's
        peaks = stack.peak_rss_mib()
    short = sum(1 for name in names if read.get(name, 0) < valid[name])
    result = {
        "path": path, "uploads": uploads, "rows_each": rows, "bytes_each": len(files[0]),
        "wall_seconds": round(wall, 1), "uploads_accepted_seconds": round(accepted, 1),
        "rows_per_second": round(sum(read.values()) / wall), "runs_lost": lost + short,
        "duplicate_rows": sum(max(0, read.get(name, 0) - valid[name]) for name in names),
        "commit_retries": int(retries), "commit_retries_by_cause": retry_causes, "commits": commits,
        "peak_rss_mib": peaks,
        "sampled_peak_rss_mib": {k: round(v) for k, v in sampler.peak_mib.items()},
    }  # fmt: skip
    print(f"burst: {result}")
    return result


def memory(size_gib: float) -> dict[str, Any]:
    """The API alone (no operator in its namespace, so nothing ingests the file): RSS while the file streams."""
    csv = OrdersCsv()
    blocks = csv.blocks_for(int(size_gib * 2**30))
    size = blocks * len(csv.block()) + len(csv.header)
    with bench_stack("memory", with_operator=False) as stack:
        stack.http.get(f"{stack.api.url}/readyz").raise_for_status()  # as the chart's readiness probe does
        before = stack.peak_rss_mib()["api"]
        with RssSampler({"api": stack.api.pid}, interval=0.1) as sampler:
            started = time.perf_counter()
            stack.upload(csv.blocks(blocks), size, {})
            seconds = time.perf_counter() - started
        peak = stack.peak_rss_mib()["api"]
    result = {"bytes": size, "seconds": round(seconds, 1), "mb_per_second": round(size / 1e6 / seconds, 1),
              "api_rss_before_mib": before, "api_peak_rss_mib": peak,
              "api_sampled_peak_rss_mib": round(sampler.peak_mib["api"])}  # fmt: skip
    print(f"memory: {result}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller counts and files: a run of minutes")
    parser.add_argument("--only", nargs="+", choices=["small", "large", "burst", "memory"], default=None)
    parser.add_argument("--files-dir", type=Path, default=Path(tempfile.gettempdir()) / "lakehouse-bench-files")
    parser.add_argument("--large-rows", type=int, nargs="+", help="the large files' rows (instead of the size's)")
    parser.add_argument("--spark-large-rows", type=int, nargs="*", help="of those, the ones also sent to Spark")
    parser.add_argument("--burst-uploads", type=int, help="uploads in the burst (instead of the size's)")
    parser.add_argument("--small-paths", nargs="+", choices=[p.split(" ")[0] for p in PATHS], help="of the small files")
    options = parser.parse_args()
    scenarios = set(options.only or ["small", "large", "burst", "memory"])
    size = dict(SIZES["quick" if options.quick else "full"])
    if options.large_rows:
        size["large"] = options.large_rows
    if options.spark_large_rows is not None:
        size["spark_large"] = options.spark_large_rows
    if options.burst_uploads:
        size["burst"] = (options.burst_uploads, size["burst"][1])
    options.files_dir.mkdir(exist_ok=True)
    overridden = [f"{o}={getattr(options, o)}" for o in ("large_rows", "spark_large_rows", "burst_uploads")]
    label = ("quick" if options.quick else "full") + "".join(f", {o}" for o in overridden if not o.endswith("=None"))
    at_start = machine()
    name = "end_to_end" if not options.quick else "end_to_end_quick"
    scenario_runs = {
        "memory": lambda: memory(size["memory_gib"]),
        "small_files": lambda: small_files(size["small"], nifi_rss_mib() is not None, options.small_paths),
        "large_files": lambda: large_files(size["large"], size["spark_large"], options.files_dir),
        "burst": lambda: burst(*size["burst"]),
    }
    for key, run in scenario_runs.items():
        if key.split("_")[0] in scenarios:
            save(name, {"size": label, key: run()}, at_start)  # one by one


def save(name: str, figures: dict[str, Any], at_start: dict[str, Any]) -> None:
    """Adds the figures to bench/results/<name>.json (the other scenarios' earlier figures stay), then the table."""
    earlier = RESULTS_DIR / f"{name}.json"
    report = json.loads(earlier.read_text())["results"][0] if earlier.exists() else {}
    if "small_files" in figures:  # paths not measured this time (--small-paths) keep their earlier figures
        fresh = {small["path"] for small in figures["small_files"]}
        kept = [small for small in report.get("small_files", []) if small["path"] not in fresh]
        figures["small_files"] = sorted(kept + figures["small_files"], key=lambda small: [*PATHS].index(small["path"]))
    write_results(name, __doc__.splitlines()[0], [report | figures], machine_at_start=at_start)
    write_report(name)


if __name__ == "__main__":
    main()
