"""A full scan of a bronze table after many small appends, before and after compaction (lakehouse/maintenance/).

Fills a scratch table of the `bench` namespace with `--runs` appends of `--rows` orders each through the bronze
writer (as that many runs would: a file per run and monthly partition), then times a full scan (PyIceberg, to
Arrow) `--repeat` times, compacts the table as the operator's maintenance does, and times the scan again, and a
time-travel scan of the last snapshot before the compaction. Needs the stack (`eval "$(make -s env)"`).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections.abc import Callable

import pyarrow as pa
from _common import write_results

from lakehouse.bronze.writer import ensure_table
from lakehouse.catalog.connect import rest_catalog
from lakehouse.contracts.registry import ContractRegistry
from lakehouse.devtools.sample_tables import append_runs
from lakehouse.maintenance.compaction import compact
from lakehouse.settings import CatalogSettings, S3Settings


def timed_scans(scan: Callable[[], pa.Table], repeat: int) -> tuple[list[float], int]:
    """Seconds of each scan after a warm-up, and the rows it read."""
    rows = scan().num_rows
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        scan()
        seconds.append(round(time.perf_counter() - started, 3))
    return seconds, rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--rows", type=int, default=20_000, help="orders per run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the table (dropped by default)")
    args = parser.parse_args()

    contract = ContractRegistry.default().get("orders")
    catalog = rest_catalog(CatalogSettings(), S3Settings())
    name = f"bench.maintenance_{uuid.uuid4().hex[:8]}"
    ensure_table(catalog, contract, name)
    try:
        started = time.perf_counter()
        append_runs(catalog, contract, name, args.runs, args.rows)
        fill_seconds = time.perf_counter() - started
        table = catalog.load_table(name)
        files_before = len(list(table.scan().plan_files()))
        latest_before = table.current_snapshot().snapshot_id  # type: ignore[union-attr]
        before, rows = timed_scans(lambda: catalog.load_table(name).scan().to_arrow(), args.repeat)

        started = time.perf_counter()
        result = compact(table, contract.maintenance.compaction.target_file_size_mb * 1024 * 1024, 5)
        compaction_seconds = time.perf_counter() - started

        files_after = len(list(catalog.load_table(name).scan().plan_files()))
        after, rows_after = timed_scans(lambda: catalog.load_table(name).scan().to_arrow(), args.repeat)
        travel, rows_travel = timed_scans(
            lambda: catalog.load_table(name).scan(snapshot_id=latest_before).to_arrow(), args.repeat
        )
        assert rows_after == rows == rows_travel, (rows, rows_after, rows_travel)
    finally:
        if not args.keep:
            catalog.purge_table(name)
    results = [
        {"scan": "before compaction", "files": files_before, "rows": rows, "seconds": before},
        {"scan": "after compaction", "files": files_after, "rows": rows_after, "seconds": after},
        {"scan": "time travel to before", "files": files_before, "rows": rows_travel, "seconds": travel},
    ]
    for line in results:
        print(f"{line['scan']:<24} {line['files']:>5} files  median {statistics.median(line['seconds']):.3f} s")
    print(f"compaction: {result.files_rewritten} files -> {result.files_written} in {compaction_seconds:.1f} s")
    write_results(
        "table_maintenance",
        "full scan (PyIceberg to Arrow) of a bronze orders table after many small appends, before and after compaction",
        results,
        runs=args.runs,
        rows_per_run=args.rows,
        fill_seconds=round(fill_seconds, 1),
        compaction={
            "files_rewritten": result.files_rewritten,
            "files_written": result.files_written,
            "seconds": round(compaction_seconds, 1),
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
