"""Benchmark: one file end to end through the cluster's pods, by the SparkApplication path and by the fast path.

For each size, the same orders CSV (2% invalid rows) is uploaded to the in-cluster API Service twice, one
run with `transform_engine=spark` (operator pod → SparkApplication → Spark Operator → driver and executor
pods) and one with `transform_engine=arrow` (the operator pod's PyIceberg/Arrow writer), interleaved, one
after the other. The time is from the upload request to the run reaching Succeeded (polled every 100 ms);
the phase durations come from the run's conditions. Results go to bench/results/cluster_paths.json.
Needs the stack with the cluster (`make cluster`), then

    eval "$(make -s env)"; .venv/bin/python bench/cluster_paths.py [--rows 1000 100000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

import requests
from _common import phase_seconds, wait_for_run, write_results
from kubernetes import client, config
from lakehouse_cli.multipart import MultipartUpload

from lakehouse.devtools.sample_data import orders
from lakehouse.k8s.ingestionrun.phase import Phase

PATHS = {"spark": "SparkApplication pods", "arrow": "fast path (operator pod)"}


def upload(data: bytes, engine: str) -> str:
    form = MultipartUpload(
        fields={"dataset": "orders", "transform_engine": engine}, filename="orders.csv", file_size=len(data)
    )
    headers, body = form.headers(), b"".join(form.body([data]))
    response = requests.post(
        f"{os.environ['LAKEHOUSE_CLUSTER_API_URL']}/api/v1/uploads",
        data=body,
        headers={**headers, "X-API-Key": os.environ["LAKEHOUSE_API_KEY"]},
        timeout=300,
    )
    response.raise_for_status()
    return response.json()["runName"]


def end_to_end(api: client.CustomObjectsApi, namespace: str, data: bytes, engine: str) -> dict[str, Any]:
    started = time.perf_counter()
    name = upload(data, engine)
    status = wait_for_run(api, namespace, name, {Phase.SUCCEEDED}, timeout=1200, poll=0.1)
    return {"seconds": round(time.perf_counter() - started, 2), "phases": phase_seconds(status)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000, 100_000])
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    config.load_kube_config()
    api = client.CustomObjectsApi()
    namespace = os.environ["LAKEHOUSE_CLUSTER_NAMESPACE"]
    results: list[dict[str, Any]] = []
    for rows in args.rows:
        data = orders(rows, invalid_every=50, seed=rows).csv_bytes()
        samples: dict[str, list[dict[str, Any]]] = {engine: [] for engine in PATHS}
        for _ in range(args.repeat):
            for engine in PATHS:  # interleaved, so both paths see the same machine
                samples[engine].append(end_to_end(api, namespace, data, engine))
        for engine, runs in samples.items():
            seconds = [r["seconds"] for r in runs]
            results.append({
                "rows": rows, "bytes": len(data), "path": PATHS[engine], "engine": engine,
                "median_seconds": round(statistics.median(seconds), 2), "runs": runs,
            })  # fmt: skip
            print(f"{rows:>8} rows  {PATHS[engine]:<28} median {statistics.median(seconds):7.2f} s  {seconds}")
    write_results("cluster_paths", __doc__.splitlines()[0], results)


if __name__ == "__main__":
    main()
