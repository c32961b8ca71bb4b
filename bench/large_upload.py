"""Benchmark: the built-in ingest of gigabyte uploads, its time and peak memory; and what the Arrow transform
then does with the raw file.

Each step runs in a fresh child process, which reports its own peak RSS (VmHWM) and its RSS after imports:
- ingest: a generated orders CSV (--size-gib) in S3 -> raw/ and quarantine/ (lakehouse.ingest.builtin);
- mismatch: a CSV (--mismatch-size-gib) whose header does not match the contract, which must fail at once;
- transform (with --transform): the raw file -> bronze rows -> an Iceberg append to `bench_large.orders`
  (the operator's `arrow` engine's steps), dropped afterwards.
The issue measured the ingest before it streamed: a 1 GiB CSV with a wrong header took the operator to
3.2 GB resident and about 40 s. Needs the stack (S3; the catalog for --transform). Results:
bench/results/large_upload.json.

    .venv/bin/python bench/large_upload.py [--size-gib 2] [--mismatch-size-gib 1] [--transform]
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import json
import pstats
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from _common import write_results

from lakehouse.devtools.large_orders import OrdersCsv, put_chunks
from lakehouse.settings import S3Settings
from lakehouse.storage.layout import IngestPaths, upload_location
from lakehouse.storage.s3 import S3Location

GiB = 2**30
BENCH_TABLE = "bench_large.orders"


def rss_mib(field: str) -> float:
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith(field))) / 1024


def child(step: str, args: dict[str, Any]) -> dict[str, Any]:
    """One step in this (child) process; returns its figures."""
    from lakehouse.contracts.registry import ContractRegistry
    from lakehouse.ingest.builtin import ingest_upload
    from lakehouse.ingest.errors import InputError

    contract = ContractRegistry.default().get("orders")
    s3 = S3Settings().client()
    if step == "transform":  # what the operator has imported and connected before its first run
        from lakehouse_operator.engines.arrow import ArrowTransformEngine
        from lakehouse_operator.engines.base import RunContext

        from lakehouse.catalog.connect import rest_catalog
        from lakehouse.settings import CatalogSettings

        catalog = rest_catalog(CatalogSettings(), S3Settings())
        catalog.list_namespaces()
    at_start = rss_mib("VmRSS:")
    started = time.monotonic()
    figures: dict[str, Any] = {}
    profiler = cProfile.Profile() if args.get("profile") else None
    if profiler:
        profiler.enable()
    if step in ("ingest", "mismatch"):
        paths = IngestPaths(S3Location.parse(args["raw"]), S3Location.parse(args["quarantine"]))
        source = S3Location.parse(args["source"])
        try:
            report = ingest_upload(s3, contract, source, "csv", args["upload_id"], paths, args["sha256"])
            figures |= {"valid_rows": report.valid_rows, "rejected_rows": report.rejected_rows}
        except InputError as error:
            figures |= {"failed": error.reason}
    else:
        run = RunContext(
            name=args["upload_id"], namespace="bench", upload_id=args["upload_id"], dataset="orders",
            contract=contract, source_uri=args["source"], source_format="csv", source_sha256=None,
            processing_date=dt.date.today(), ingest_timestamp=dt.datetime.now(dt.UTC).replace(tzinfo=None),
            target_table=BENCH_TABLE, owner={},
        )  # fmt: skip
        chunk_rows = {"chunk_rows": args["chunk_rows"]} if args.get("chunk_rows") else {}
        engine = ArrowTransformEngine(s3, lambda: catalog, **chunk_rows)
        outcome = engine.transform(run, args["raw"])  # the operator's steps
        figures |= {"rows_written": outcome.rows_written, **chunk_rows}
    seconds = time.monotonic() - started
    if profiler:
        profiler.disable()
        profiler.dump_stats(Path(args["profile"]) / f"{step}.prof")
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
    import pyarrow as pa

    return figures | {
        "seconds": round(seconds, 1),
        "arrow_pool_peak_mib": round(pa.default_memory_pool().max_memory() / 2**20),
        "rss_after_imports_mib": round(at_start),
        "peak_rss_mib": round(rss_mib("VmHWM:")),
    }


def run_child(step: str, args: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", step, json.dumps(args)], check=True, capture_output=True, text=True
    )
    if args.get("profile"):
        (Path(args["profile"]) / f"{step}.txt").write_text(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def put_csv(s3: Any, orders: OrdersCsv, size: int, upload_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    location = upload_location("uploads", "orders", upload_id, "orders.csv", dt.date.today())
    started = time.monotonic()
    put = put_chunks(s3, location, orders.blocks(orders.blocks_for(size)))
    paths = IngestPaths.for_run("orders", dt.date.today(), upload_id, "raw", "quarantine")
    args = {
        "source": location.uri,
        "sha256": put.sha256,
        "upload_id": upload_id,
        "raw": paths.raw.uri,
        "quarantine": paths.quarantine.uri,
    }
    return args, {"bytes": put.size, "put_seconds": round(time.monotonic() - started, 1)}


def delete(s3: Any, *uris: str) -> None:
    for uri in uris:
        location = S3Location.parse(uri)
        s3.delete_object(Bucket=location.bucket, Key=location.key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-gib", type=float, default=2.0)
    parser.add_argument("--mismatch-size-gib", type=float, default=1.0)
    parser.add_argument("--transform", action="store_true", help="also measure the Arrow transform of the raw file")
    parser.add_argument("--skip-mismatch", action="store_true", help="only the ingest (and the transform)")
    parser.add_argument("--profile", type=Path, help="a directory for each step's cProfile (<step>.prof, .txt)")
    parser.add_argument("--chunk-rows", type=int, nargs="+", help="the transform's chunk sizes (one run each)")
    parser.add_argument("--no-save", action="store_true", help="print the figures, leave bench/results as it is")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        print(json.dumps(child(options.child[0], json.loads(options.child[1]))))
        return

    s3 = S3Settings().client()
    results = []
    tag = uuid.uuid4().hex[:8]

    profile = {"profile": str(options.profile.resolve())} if options.profile else {}
    if options.profile:
        options.profile.mkdir(parents=True, exist_ok=True)
    if not options.skip_mismatch:
        args, file = put_csv(
            s3,
            OrdersCsv(header=b"id,customer,total,day,note\n"),
            int(options.mismatch_size_gib * GiB),
            f"bench-mismatch-{tag}",
        )
        try:
            results.append({"step": "mismatch", **file, **run_child("mismatch", args | profile)})
        finally:
            delete(s3, args["source"])
        print(results[-1])

    orders = OrdersCsv()
    args, file = put_csv(s3, orders, int(options.size_gib * GiB), f"bench-large-{tag}")
    try:
        results.append({"step": "ingest", **file, **run_child("ingest", args | profile)})
        print(results[-1])
        if options.transform:
            raw_bytes = s3.head_object(**_where(args["raw"]))["ContentLength"]
            for chunk_rows in options.chunk_rows or [None]:
                results.append({"step": "transform", "raw_bytes": raw_bytes})
                results[-1] |= run_child("transform", args | profile | {"chunk_rows": chunk_rows})
                print(results[-1])
                _drop_bench_table()
    finally:
        delete(s3, args["source"], args["raw"], args["quarantine"])
        if options.transform:
            _drop_bench_table()
    if options.no_save:
        return
    write_results(
        "large_upload",
        "built-in ingest of a large orders CSV from S3 (and of one with a wrong header), and the Arrow transform "
        "of its raw file; each in a fresh process, its peak RSS (VmHWM)",
        results,
        before="the issue's figure before streaming: a 1 GiB CSV with a wrong header, 3.2 GB resident and ~40 s",
    )


def _where(uri: str) -> dict[str, str]:
    location = S3Location.parse(uri)
    return {"Bucket": location.bucket, "Key": location.key}


def _drop_bench_table() -> None:
    from lakehouse.catalog.connect import rest_catalog
    from lakehouse.settings import CatalogSettings

    catalog = rest_catalog(CatalogSettings(), S3Settings())
    if catalog.table_exists(BENCH_TABLE):
        catalog.purge_table(BENCH_TABLE)


if __name__ == "__main__":
    main()
