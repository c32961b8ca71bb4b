"""Spark compaction of one Iceberg table: Iceberg's rewrite_data_files action, for tables too large to compact in one
Python process (the PyIceberg compaction, lakehouse/maintenance/compaction.py, takes the others).

    spark-submit --conf spark.driver.extraClassPath=... lakehouse/jobs/compact_table.py --table bronze.orders \
        --target-file-size-bytes 134217728 --min-input-files 5 --compaction-id <uuid>

It bin-packs small files into files of about the target size, sorted by the table's sort order when it has one
(Iceberg's `sort` strategy groups files as `binpack` does, then sorts each group's rows), and commits the swap in
one snapshot whose summary carries the same `lakehouse.operation=compaction` as the PyIceberg one, plus
`lakehouse.compaction.engine=spark` and the caller's `lakehouse.compaction.id`, by which the caller finds the
snapshot. Iceberg validates the swap against the files it read, so an append that commits meanwhile is kept.

Endpoints and credentials come from the environment only (lakehouse.settings), as for the bronze transform job.
The last stdout line is JSON: {"files_rewritten", "files_written", "bytes_rewritten"}, or {"error"} with exit
status 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from typing import Any

from pyspark.sql import SparkSession

from lakehouse.catalog.spark import SPARK_CATALOG
from lakehouse.jobs.bronze_transform import spark_conf, spark_session
from lakehouse.maintenance.compaction import compaction_properties
from lakehouse.settings import PlatformSettings

log = logging.getLogger("compact_table")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--table", required=True, help="namespace.table")
    parser.add_argument("--target-file-size-bytes", required=True, type=int)
    parser.add_argument("--min-input-files", required=True, type=int)
    parser.add_argument("--compaction-id", required=True, help="goes into the snapshot summary")
    return parser.parse_args(argv)


def rewrite_options(target_file_size_bytes: int, min_input_files: int) -> dict[str, str]:
    """The action's options. Small means below 75 % of the target, as for the PyIceberg compaction (and Iceberg's
    default); one commit for the whole table, so a failure leaves nothing half done."""
    return {
        "target-file-size-bytes": str(target_file_size_bytes),
        "min-file-size-bytes": str(int(target_file_size_bytes * 0.75)),
        "min-input-files": str(min_input_files),
        "partial-progress.enabled": "false",
    }


def compact(spark: SparkSession, identifier: str, options: dict[str, str], properties: dict[str, str]) -> Any:
    """Runs the action through py4j (the SQL procedure cannot set snapshot properties); its Java result."""
    jvm, session = spark._jvm, spark._jsparkSession  # type: ignore[attr-defined]
    table = jvm.org.apache.iceberg.spark.Spark3Util.loadIcebergTable(session, f"{SPARK_CATALOG}.{identifier}")
    action = jvm.org.apache.iceberg.spark.actions.SparkActions.get(session).rewriteDataFiles(table)
    action = action.binPack() if table.sortOrder().isUnsorted() else action.sort()
    for key, value in options.items():
        action = action.option(key, value)
    for key, value in properties.items():
        action = action.snapshotProperty(key, value)
    return action.execute()


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    platform = PlatformSettings()
    started = time.monotonic()
    spark = spark_session(spark_conf(platform.catalog, platform.s3), app_name=f"lakehouse-compact-{args.table}")
    try:
        result = compact(
            spark,
            args.table,
            rewrite_options(args.target_file_size_bytes, args.min_input_files),
            compaction_properties("spark", args.compaction_id),
        )
        outcome = {
            "files_rewritten": result.rewrittenDataFilesCount(),
            "files_written": result.addedDataFilesCount(),
            "bytes_rewritten": result.rewrittenBytesCount(),
        }
    except Exception as error:
        log.exception("the compaction of %s failed", args.table)
        print(json.dumps({"error": f"{type(error).__name__}: {error}"}), flush=True)
        return 1
    finally:
        spark.stop()
    log.info("compacted %s in %.1fs: %s", args.table, time.monotonic() - started, outcome)
    print(json.dumps(outcome), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
