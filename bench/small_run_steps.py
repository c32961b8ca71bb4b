"""Benchmark: where a small run's milliseconds go, call by call, in this process against the local stack.

The end-to-end figures (end_to_end.py) say how long a 1,000-row run takes from upload to Succeeded; this says
what each of the calls a run makes costs on its own, median of `--repeat`, so the two can be set side by side:

- Kubernetes: reading the run, patching its status;
- PostgreSQL: a phase change's rows and event in one transaction (RunRecords.write), and the wait for the event
  to reach Kafka (OutboxRelay.deliver);
- S3: the upload's HEAD, the built-in ingest of a 1,000-row CSV, reading the raw Parquet back, to_bronze;
- Iceberg: loading the table, and the exactly-once append of one run's 1,000 rows as the table's history grows
  (`--appends`; the append's own parts timed with cProfile once at the end).

    eval "$(make -s env)"; .venv/bin/python bench/small_run_steps.py [--repeat 10] [--appends 200]

Results: bench/results/small_run_steps.json.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import pstats
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import write_results
from kubernetes import client, config

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.utils: how the API creates runs

from lakehouse_operator.outbox_relay import OutboxRelay
from lakehouse_operator.records import RunRecords, Validated
from lakehouse_operator.status_writer import PhaseChange, StatusWriter

from lakehouse.bronze.transform import RunStamp, to_bronze
from lakehouse.bronze.writer import append_exactly_once, ensure_table
from lakehouse.catalog.connect import rest_catalog
from lakehouse.contracts.registry import ContractRegistry
from lakehouse.db.metadata import MetadataStore
from lakehouse.db.outbox import EventOutbox
from lakehouse.devtools.sample_data import orders
from lakehouse.events import KafkaEventPublisher
from lakehouse.ingest.builtin import ingest_upload
from lakehouse.k8s.ingestionrun.phase import Phase
from lakehouse.settings import PlatformSettings
from lakehouse.storage.layout import IngestPaths
from lakehouse.storage.s3 import S3Location, head_object, read_parquet
from tests.utils.runs import create_run, run_body, upload


def median_ms(call: Callable[[], Any], repeat: int) -> float:
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return round(statistics.median(seconds) * 1000, 1)


def kubernetes_steps(namespace: str, run: dict[str, Any], repeat: int) -> dict[str, float]:
    writer = StatusWriter()
    name = run["metadata"]["name"]
    writer.set_phase(namespace, name, PhaseChange(Phase.PENDING, "Accepted", "bench"))
    flip = iter(range(10**6))
    return {
        "get_run_ms": median_ms(lambda: writer.read(namespace, name), repeat),
        "status_patch_with_read_ms": median_ms(
            lambda: writer.set_phase(namespace, name, PhaseChange(Phase.PENDING, "Accepted", f"bench {next(flip)}")),
            repeat,
        ),
    }


def records_steps(platform: PlatformSettings, run: dict[str, Any], repeat: int) -> dict[str, float]:
    url = platform.database.url.get_secret_value()
    relay = OutboxRelay(EventOutbox(url), KafkaEventPublisher(platform.kafka.client_config()), 1.0)
    relay.start()
    try:
        # Records that do not wait for delivery (a relay never started), so the two are timed apart.
        unstarted = OutboxRelay(EventOutbox(url), KafkaEventPublisher(platform.kafka.client_config()), 1.0)
        records = RunRecords(MetadataStore(url), unstarted, delivery_seconds=2.0)
        change = PhaseChange(Phase.INGESTING, "IngestStarted", "bench")
        body = run | {"status": {"phase": "Pending"}}
        figures = {"records_write_ms": median_ms(lambda: records.write(body, change, Validated("builtin")), repeat)}
        figures["event_delivery_ms"] = median_ms(lambda: relay.deliver(2.0), repeat)
    finally:
        relay.stop()
    return figures


def data_steps(s3: Any, contract: Any, up: Any, repeat: int) -> tuple[dict[str, float], Any]:
    source = S3Location.parse(up.uri)
    paths = IngestPaths.for_run("orders", dt.date.today(), up.upload_id, "raw", "quarantine")
    stamp = RunStamp(up.upload_id, dt.date.today(), dt.datetime.now(dt.UTC).replace(tzinfo=None))
    figures = {
        "s3_head_ms": median_ms(lambda: head_object(s3, source), repeat),
        "builtin_ingest_ms": median_ms(
            lambda: ingest_upload(s3, contract, source, "csv", up.upload_id, paths, up.sha256), repeat
        ),
        "read_raw_parquet_ms": median_ms(lambda: read_parquet(s3, paths.raw), repeat),
    }
    raw = read_parquet(s3, paths.raw)
    figures["to_bronze_ms"] = median_ms(lambda: to_bronze(contract, raw, stamp), repeat)
    return figures, to_bronze(contract, raw, stamp)


def iceberg_steps(platform: PlatformSettings, contract: Any, rows: Any, appends: int, repeat: int) -> dict[str, Any]:
    catalog = rest_catalog(platform.catalog, platform.s3)
    identifier = f"bronze_bench_{uuid.uuid4().hex[:8]}.orders"
    ensure_table(catalog, contract, identifier)
    figures: dict[str, Any] = {
        "load_table_ms": median_ms(lambda: catalog.load_table(identifier), repeat),
        "ensure_table_ms": median_ms(lambda: ensure_table(catalog, contract, identifier), repeat),
    }
    append_ms = []
    for n in range(appends):
        started = time.perf_counter()
        append_exactly_once(catalog, contract, rows, run_id=f"bench-{n}", upload_id=f"u-{n}", identifier=identifier)
        append_ms.append((time.perf_counter() - started) * 1000)
    marks = sorted({1, 10, 50, 100, 200, 500, appends} & set(range(1, appends + 1)))
    figures["append_ms_by_snapshots_before"] = {
        str(mark - 1): round(statistics.median(append_ms[max(0, mark - 5) : mark]), 1) for mark in marks
    }
    profile = cProfile.Profile()
    profile.enable()
    append_exactly_once(catalog, contract, rows, run_id="bench-profiled", upload_id="u-p", identifier=identifier)
    profile.disable()
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(30)
    figures["profiled_append_top"] = [line for line in out.getvalue().splitlines() if line.strip()][:45]
    for table in catalog.list_tables(identifier.rsplit(".", 1)[0]):
        catalog.purge_table(table)
    catalog.drop_namespace(identifier.rsplit(".", 1)[0])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--appends", type=int, default=200)
    options = parser.parse_args()
    config.load_kube_config()
    platform = PlatformSettings()
    s3 = platform.s3.client()
    contract = ContractRegistry.default().get("orders")
    namespace = f"bench-steps-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api()
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    try:
        up = upload(s3, orders(1_000, seed=1).csv_bytes(), "orders", "csv")
        run = create_run(client.CustomObjectsApi(), namespace, run_body(up, "orders"))
        figures: dict[str, Any] = {"rows": 1_000, "repeat": options.repeat}
        figures |= kubernetes_steps(namespace, run, options.repeat)
        figures |= records_steps(platform, run, options.repeat)
        data, rows = data_steps(s3, contract, up, options.repeat)
        figures |= data | iceberg_steps(platform, contract, rows, options.appends, options.repeat)
    finally:
        core.delete_namespace(namespace)
    print({k: v for k, v in figures.items() if k != "profiled_append_top"})
    print("\n".join(figures["profiled_append_top"]))
    write_results("small_run_steps", __doc__.splitlines()[0], [figures])


if __name__ == "__main__":
    main()
