"""`make demo`: one orders file from upload to bronze on the local stack, narrated.

Uploads a generated orders CSV with a few invalid rows to S3, creates its IngestionRun,
follows it to the end, then shows the bronze rows, the quarantined rows and the metrics.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
import uuid

import psycopg
from kubernetes import client, config
from pyiceberg.expressions import EqualTo

from lakehouse.catalog.connect import rest_catalog
from lakehouse.devtools.sample_data import orders
from lakehouse.settings import CatalogSettings, S3Settings
from lakehouse.storage.s3 import S3Location, read_parquet

GROUP, VERSION, PLURAL = "lakehouse.dev", "v1alpha1", "ingestionruns"


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def main() -> int:
    namespace = os.environ["LAKEHOUSE_NAMESPACE"]
    config.load_kube_config(os.environ["KUBECONFIG"])
    runs = client.CustomObjectsApi()
    s3 = S3Settings().client()

    upload_id = f"demo-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"
    sample = orders(1000, invalid_every=50, seed=int(time.time()))
    data = sample.csv_bytes()
    key = f"orders/{time.strftime('%Y-%m-%d')}/{upload_id}/orders.csv"
    say(f"uploading orders.csv ({len(data)} bytes, 1000 rows, {len(sample.rejected)} invalid) to s3://uploads/{key}")
    s3.put_object(Bucket="uploads", Key=key, Body=data)

    say(f"creating IngestionRun {namespace}/{upload_id}")
    runs.create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "IngestionRun",
            "metadata": {"name": upload_id},
            "spec": {
                "uploadId": upload_id,
                "dataset": "orders",
                "source": {
                    "uri": f"s3://uploads/{key}",
                    "format": "csv",
                    "sizeBytes": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "filename": "orders.csv",
                },
            },
        },
    )

    status: dict = {}
    last_phase, started = None, time.monotonic()
    while time.monotonic() - started < 300:
        status = runs.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, upload_id).get("status") or {}
        if status.get("phase") != last_phase:
            last_phase = status.get("phase")
            print(f"  {time.monotonic() - started:6.2f}s  {last_phase or '(new)':<13} {status.get('message', '')}")
        if last_phase in ("Succeeded", "Failed"):
            break
        time.sleep(0.2)
    if last_phase != "Succeeded":
        print(f"run did not succeed: {status}", file=sys.stderr)
        return 1

    say("kubectl get ingestionruns")
    subprocess.run(
        [os.environ.get("KUBECTL", "kubectl"), "get", "ir", upload_id, "-n", namespace, "-o", "wide"],
        check=False,
    )

    say(f"bronze rows in {status['table']} (snapshot {status['snapshotId']})")
    catalog = rest_catalog(CatalogSettings(), S3Settings())
    bronze = catalog.load_table(status["table"]).scan(row_filter=EqualTo("upload_id", upload_id)).to_arrow()
    columns = ["order_id", "customer_id", "amount", "order_date", "year", "month", "day", "data_version"]
    print("  " + "".join(f"{name:>14}" for name in columns))
    for row in bronze.select(columns).slice(0, 8).to_pylist():
        print("  " + "".join(f"{row[name]!s:>14}" for name in columns))
    print(f"  ... {bronze.num_rows} rows from this upload")

    say(f"quarantined rows ({status['quarantinePath']})")
    for row in read_parquet(s3, S3Location.parse(status["quarantinePath"])).to_pylist()[:10]:
        print(f"  row {row['_source_row']:>4}: {row['_reject_reason']}")

    say("metrics in PostgreSQL")
    with psycopg.connect(os.environ["DATABASE_URL"]) as db:
        for stage, engine, rows_in, rows_out, rejected, ms in db.execute(
            "SELECT stage, engine, rows_in, rows_out, rows_rejected, duration_ms FROM job_metrics "
            "WHERE run_id = %s ORDER BY started_at",
            (upload_id,),
        ):
            print(f"  job {stage:<9} {engine:<8} in={rows_in} out={rows_out} rejected={rejected} {ms} ms")
        for name, column, passed, failed in db.execute(
            "SELECT check_name, column_name, passed_count, failed_count FROM data_quality_metrics "
            "WHERE run_id = %s AND failed_count > 0 ORDER BY check_name",
            (upload_id,),
        ):
            print(f"  check {name:<28} {column:<12} passed={passed} failed={failed}")
    print(f"\nrun {upload_id} succeeded: {status['counts']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
