"""Benchmark: the Spark job's raw -> bronze work, before and after raw/ was trusted (issue #11, finding 3).

old: the job at commit 9d25294, which re-ran the contract's rules on raw/ as Spark expressions
     (lakehouse/contracts/spark_rules.py of that commit, loaded from git): row numbers, every check as a
     flag, the frame persisted, one aggregation for the counts, then the valid rows to bronze.
new: the job now (lakehouse.bronze.spark_frame): raw/'s schema checked, its rows written as they are.

Both read the same raw/ file (1 M orders, as the ingest stage writes them) in one Spark session (local
mode, the operator's default driver memory) and write their bronze rows, sorted by the table's sort order,
to a local Parquet folder that stands in for the Iceberg table (the commit itself is the same for both).
Runs alternate, after one warm-up each; wall times go to bench/results/spark_contract_rules.json, and the
two outputs are compared row for row.

    .venv/bin/python bench/spark_contract_rules.py [--rows 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pyarrow as pa
import pyspark
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as sf

from lakehouse.bronze.spark_frame import SESSION_CONF, to_bronze_frame
from lakehouse.bronze.transform import RunStamp
from lakehouse.contracts.registry import ContractRegistry
from lakehouse.devtools.sample_data import orders
from lakehouse.ingest.builtin import ingest_bytes
from lakehouse.storage.s3 import parquet_bytes

REPOSITORY = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results" / "spark_contract_rules.json"
OLD_COMMIT = "9d25294"
ORDERS = ContractRegistry.default().get("orders")
STAMP = RunStamp("bench", dt.date(2025, 7, 1), dt.datetime(2025, 7, 1, 9, 30))
CHUNK = 100_000


def raw_file(rows: int, directory: Path) -> Path:
    """raw/ as the ingest stage writes it: the validator's output, made in chunks to keep memory low."""
    parts = []
    for first in range(0, rows, CHUNK):
        sample = orders(min(CHUNK, rows - first), seed=first, first_order_id=first + 1)
        parts.append(ingest_bytes(ORDERS, sample.csv_bytes(), "csv", "bench", "bench upload").raw)
    path = directory / "raw.parquet"
    path.write_bytes(parquet_bytes(pa.concat_tables(parts)))
    return path


def old_modules(directory: Path, spark: SparkSession) -> tuple[ModuleType, ModuleType]:
    """spark_rules and spark_frame as they were at OLD_COMMIT, importable on Spark's Python workers too."""
    modules = []
    for name, path in [
        ("spark_rules_old", "lakehouse/contracts/spark_rules.py"),
        ("spark_frame_old", "lakehouse/bronze/spark_frame.py"),
    ]:
        source = subprocess.run(
            ["git", "-C", str(REPOSITORY), "show", f"{OLD_COMMIT}:{path}"], check=True, capture_output=True, text=True
        ).stdout
        file = directory / f"{name}.py"
        file.write_text(source)
        spec = importlib.util.spec_from_file_location(name, file)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        spark.sparkContext.addPyFile(str(file))
        modules.append(module)
    return modules[0], modules[1]


def write_bronze(bronze: DataFrame, out: str) -> None:
    bronze.sortWithinPartitions(*ORDERS.bronze.sort_by).write.mode("overwrite").parquet(out, compression="zstd")


def old_job(spark: SparkSession, rules: ModuleType, frame: ModuleType, raw_path: str, out: str) -> None:
    """The data path of spark/bronze_transform.py's run() at OLD_COMMIT."""
    raw = spark.read.parquet(raw_path)
    raw = raw.select("*", (sf.col("_metadata.row_index") + 1).alias(rules.SOURCE_ROW))
    checked = rules.check_frame(raw, ORDERS)
    checked.frame.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        checks = checked.check_results()
        if checks[0].failed:
            raise SystemExit(f"the old checks rejected {checks[0].failed} rows of a valid raw/ file")
        write_bronze(frame.to_bronze_frame(ORDERS, checked.valid_rows(), STAMP), out)
    finally:
        checked.frame.unpersist()


def new_job(spark: SparkSession, raw_path: str, out: str) -> None:
    """The data path of spark/bronze_transform.py's run() now."""
    raw = spark.read.parquet(raw_path)
    bronze = to_bronze_frame(ORDERS, raw, STAMP)
    if not raw.isEmpty():
        write_bronze(bronze, out)


def timed(job: Callable[[], None]) -> float:
    started = time.perf_counter()
    job()
    return round(time.perf_counter() - started, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="1g", help="the operator's LAKEHOUSE_SPARK_DRIVER_MEMORY default")
    args = parser.parse_args()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    with tempfile.TemporaryDirectory(prefix="bench-spark-rules-") as temp:
        directory = Path(temp)
        started = time.perf_counter()
        raw_path = str(raw_file(args.rows, directory))
        print(f"raw/ file of {args.rows} rows made in {time.perf_counter() - started:.1f}s", flush=True)
        builder = SparkSession.builder.master(args.master).appName("bench-spark-contract-rules")
        # The old job's session also turned ANSI off (its casts of bad text had to give null).
        conf = {
            **SESSION_CONF,
            "spark.sql.ansi.enabled": "false",
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
        }
        for key, value in {**conf, "spark.driver.memory": args.driver_memory}.items():
            builder = builder.config(key, value)
        spark = builder.getOrCreate()
        spark.sparkContext.setLogLevel("WARN")
        try:
            rules, frame = old_modules(directory, spark)
            jobs = {
                "old": lambda: old_job(spark, rules, frame, raw_path, str(directory / "old")),
                "new": lambda: new_job(spark, raw_path, str(directory / "new")),
            }
            seconds: dict[str, list[float]] = {name: [] for name in jobs}
            warm_up = {name: timed(job) for name, job in jobs.items()}
            print(f"warm-up: {warm_up}", flush=True)
            for repeat in range(args.repeats):
                for name, job in jobs.items():
                    seconds[name].append(timed(job))
                print(f"run {repeat + 1}: " + ", ".join(f"{n} {s[-1]}s" for n, s in seconds.items()), flush=True)
            old_rows, new_rows = spark.read.parquet(str(directory / "old")), spark.read.parquet(str(directory / "new"))
            identical = new_rows.count() == args.rows and old_rows.exceptAll(new_rows).isEmpty()
            identical = identical and new_rows.exceptAll(old_rows).isEmpty()
        finally:
            spark.stop()
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    result = {
        "benchmark": "spark_contract_rules",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_1m": round(os.getloadavg()[0], 2),
            "python": platform.python_version(),
            "pyspark": pyspark.__version__,
            "master": args.master,
            "driver_memory": args.driver_memory,
        },
        "rows": args.rows,
        "old": {"code": f"{OLD_COMMIT}: lakehouse/contracts/spark_rules.py", "warm_up_seconds": warm_up["old"],
                "seconds": seconds["old"], "median_seconds": medians["old"]},
        "new": {"code": "lakehouse/bronze/spark_frame.py", "warm_up_seconds": warm_up["new"],
                "seconds": seconds["new"], "median_seconds": medians["new"]},
        "new_over_old": round(medians["new"] / medians["old"], 2),
        "outputs_identical": identical,
    }  # fmt: skip
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"median: old {medians['old']}s, new {medians['new']}s; identical bronze rows: {identical}")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
