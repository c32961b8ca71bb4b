"""Benchmark: the ingest stage on the built-in engine vs the NiFi engine, same file, same stack, one run.

For each size, the same orders CSV (10% invalid rows) is uploaded twice and run through the stack's
operator once per engine, one after the other; the time is from creating the IngestionRun to the run
reaching RawReady (or later), polled every 20 ms, so it includes the hand-off and waiting that each
engine really costs. NiFi's resident memory is read from /proc before and after. Results go to
bench/results/ingest_engines.json. Needs the local stack with NiFi: `make up NIFI=1`, then

    eval "$(make -s env)"; .venv/bin/python bench/ingest_engines.py [--rows 10000 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

from _common import wait_for_run, write_results
from kubernetes import client, config

from lakehouse.devtools.sample_data import orders
from lakehouse.k8s.ingestionrun import GROUP, PLURAL, VERSION
from lakehouse.k8s.ingestionrun.phase import Phase
from lakehouse.k8s.ingestionrun.spec import IngestionRunSpec, ingestion_run
from lakehouse.settings import PlatformSettings
from lakehouse.storage.layout import upload_location

PAST_INGEST = {Phase.RAW_READY, Phase.TRANSFORMING, Phase.SUCCEEDED}


def nifi_rss_mib() -> float | None:
    pidfile = Path(os.environ.get("LAKEHOUSE_STATE_DIR", ".state")) / "run" / "nifi.pid"
    try:
        status = Path(f"/proc/{pidfile.read_text().strip()}/status").read_text()
    except OSError:
        return None
    kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return round(kib / 1024, 1)


def ingest_seconds(api: client.CustomObjectsApi, s3, namespace: str, data: bytes, engine: str) -> float:
    upload_id = f"bench-{uuid.uuid4().hex[:12]}"
    location = upload_location("uploads", "orders", upload_id, "orders.csv", dt.date.today())
    s3.put_object(Bucket=location.bucket, Key=location.key, Body=data)
    spec = IngestionRunSpec.model_validate(
        {
            "uploadId": upload_id,
            "dataset": "orders",
            "source": {"uri": location.uri, "format": "csv", "sizeBytes": len(data)},
            "engines": {"ingest": engine},
            "target": {"namespace": "bench", "table": "orders_engines"},
        }
    )
    started = time.perf_counter()
    api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, ingestion_run(spec))
    wait_for_run(api, namespace, upload_id, PAST_INGEST, timeout=600, poll=0.02)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    config.load_kube_config()
    api = client.CustomObjectsApi()
    s3 = PlatformSettings().s3.client()
    namespace = os.environ.get("LAKEHOUSE_NAMESPACE", "lakehouse")
    rss_before = nifi_rss_mib()
    if rss_before is None:
        sys.exit("NiFi is not running: start the stack with `make up NIFI=1`")
    ingest_seconds(api, s3, namespace, orders(100).csv_bytes(), "nifi")  # deploys the flow, warms NiFi
    results = []
    for rows in args.rows:
        data = orders(rows, invalid_every=10).csv_bytes()
        timings: dict[str, list[float]] = {"builtin": [], "nifi": []}
        for _ in range(args.repeat):
            for engine, seconds in timings.items():  # interleaved, so both see the same machine load
                seconds.append(ingest_seconds(api, s3, namespace, data, engine))
        entry = {"rows": rows, "bytes": len(data)}
        for engine, seconds in timings.items():
            entry[engine] = {"median_s": round(statistics.median(seconds), 3), "runs_s": [round(s, 3) for s in seconds]}
        entry["nifi_over_builtin"] = round(entry["nifi"]["median_s"] / entry["builtin"]["median_s"], 2)
        results.append(entry)
        print(json.dumps(entry))
    write_results(
        "ingest_engines",
        "ingest stage, IngestionRun created -> RawReady, built-in vs NiFi engine",
        results,
        nifi_rss_mib={"before": rss_before, "after": nifi_rss_mib()},
    )


if __name__ == "__main__":
    main()
