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
import json
import os
import platform
import statistics
import sys
import time
import uuid
from pathlib import Path

from kubernetes import client, config

from lakehouse.devtools.sample_data import orders
from lakehouse.settings import PlatformSettings

RESULTS = Path(__file__).parent / "results" / "ingest_engines.json"
GROUP, VERSION, PLURAL = "lakehouse.dev", "v1alpha1", "ingestionruns"
PAST_INGEST = {"RawReady", "Transforming", "Succeeded"}


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
    key = f"orders/{time.strftime('%Y-%m-%d')}/{upload_id}/orders.csv"
    s3.put_object(Bucket="uploads", Key=key, Body=data)
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "IngestionRun",
        "metadata": {"name": upload_id},
        "spec": {
            "uploadId": upload_id,
            "dataset": "orders",
            "source": {"uri": f"s3://uploads/{key}", "format": "csv", "sizeBytes": len(data)},
            "engines": {"ingest": engine},
            "target": {"namespace": "bench", "table": "orders_engines"},
        },
    }
    started = time.perf_counter()
    api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        status = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, upload_id).get("status") or {}
        if status.get("phase") in PAST_INGEST:
            return time.perf_counter() - started
        if status.get("phase") == "Failed":
            raise RuntimeError(f"{engine} run {upload_id} failed: {status.get('message')}")
        time.sleep(0.02)
    raise TimeoutError(f"{engine} run {upload_id} did not reach RawReady in 600s")


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
    report = {
        "benchmark": "ingest stage, IngestionRun created -> RawReady, built-in vs NiFi engine",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "nifi_rss_mib": {"before": rss_before, "after": nifi_rss_mib()},
        "results": results,
    }
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
