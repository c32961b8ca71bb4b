"""Benchmark: contract validation of an orders CSV, vectorised Arrow engine vs a row-by-row baseline.

The baseline is what a first version would write: csv.DictReader and Python checks per row,
with the same contract and the same rejects. Both run in this process on the same bytes; the
result (rows/s, seconds, peak RSS growth) goes to bench/results/ingest_validation.json.

    .venv/bin/python bench/ingest_validation.py [--rows 200000 1000000]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import re
import subprocess
import sys
import tempfile
import time
from decimal import Decimal, InvalidOperation
from pathlib import Path

from _common import write_results

from lakehouse.contracts.registry import ContractRegistry
from lakehouse.devtools.sample_data import orders
from lakehouse.ingest.readers import read_source
from lakehouse.ingest.validation import validate

ORDERS = ContractRegistry.default().get("orders")


def baseline_validate(data: bytes) -> tuple[int, int]:
    """Row-by-row validation of the orders contract (hand-written, as a naive engine would be)."""
    valid = rejected = 0
    amount_pattern = re.compile(r"^-?\d{1,8}(\.\d{1,2})?$")
    for row in csv.DictReader(io.StringIO(data.decode())):
        reasons = []
        try:
            int(row["order_id"])
        except ValueError:
            reasons.append("order_id")
        if not row["customer_id"]:
            reasons.append("customer_id missing")
        amount = None
        if amount_pattern.match(row["amount"] or ""):
            try:
                amount = Decimal(row["amount"])
            except InvalidOperation:
                reasons.append("amount")
        else:
            reasons.append("amount")
        try:
            order_date = dt.date.fromisoformat(row["date"])
        except ValueError:
            order_date = None
            reasons.append("date")
        if amount is not None and not (0 < amount < 1_000_000):
            reasons.append("amount range")
        if order_date is not None and order_date < dt.date(2025, 1, 1):
            reasons.append("date range")
        if reasons:
            rejected += 1
        else:
            valid += 1
    return valid, rejected


def arrow_validate(data: bytes) -> tuple[int, int]:
    result = validate(ORDERS, read_source(data, "csv"))
    return result.valid.num_rows, result.rejected.num_rows


def measure(engine: str, csv_path: Path) -> dict[str, object]:
    """One engine on one file, in a fresh interpreter so peak RSS belongs to that run alone."""
    output = subprocess.run(
        [sys.executable, __file__, "--child", engine, str(csv_path)], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def child(engine: str, csv_path: str) -> None:
    data = Path(csv_path).read_bytes()
    rows = data.count(b"\n") - 1
    run = {"baseline": baseline_validate, "arrow": arrow_validate}[engine]
    # A long-lived engine imports once: the first call's lazy imports (pyarrow loads pandas on its first compute
    # call with a value set, 1.5 s here) are paid on the first lines, before the clock and the memory mark.
    run(data[: data.index(b"\n", data.index(b"\n") + 1) + 1])  # the header and the first row
    # Reset the kernel's high-water mark so the peak is this run's, not the imports'.
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_kib("VmRSS")
    started = time.perf_counter()
    valid, rejected = run(data)
    seconds = time.perf_counter() - started
    peak = _status_kib("VmHWM")
    print(
        json.dumps(
            {
                "engine": engine,
                "rows": rows,
                "bytes": len(data),
                "valid": valid,
                "rejected": rejected,
                "seconds": round(seconds, 3),
                "rows_per_second": round(rows / seconds),
                "peak_rss_growth_mib": round((peak - before) / 1024, 1),
            }
        )
    )


def _status_kib(field: str) -> int:
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(field + ":"))
    return int(line.split()[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--child", nargs=2, metavar=("ENGINE", "ROWS"))
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1])
        return
    results = []
    for rows in args.rows:
        with tempfile.NamedTemporaryFile(suffix=".csv") as csv_file:
            csv_file.write(orders(rows, invalid_every=100).csv_bytes())
            csv_file.flush()
            pair = [measure("baseline", Path(csv_file.name)), measure("arrow", Path(csv_file.name))]
        if (pair[0]["valid"], pair[0]["rejected"]) != (pair[1]["valid"], pair[1]["rejected"]):
            raise SystemExit(f"engines disagree on {rows} rows: {pair}")
        results.extend(pair)
    print(f"{'engine':<10}{'rows':>10}{'seconds':>10}{'rows/s':>12}{'peak MiB':>10}")
    for r in results:
        print(
            f"{r['engine']:<10}{r['rows']:>10}{r['seconds']:>10}{r['rows_per_second']:>12}{r['peak_rss_growth_mib']:>10}"
        )
    write_results("ingest_validation", "ingest validation: the seed's row-by-row baseline vs Arrow", results)


if __name__ == "__main__":
    main()
