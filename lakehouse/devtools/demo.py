"""`make demo`: one orders file from upload to bronze on the local stack, narrated.

Generates an orders CSV with a few invalid rows, uploads it through the Datasource API with
the `lakehouse` CLI and follows its IngestionRun to the end, then shows the run as kubectl
sees it, the bronze table, the quarantined rows and the metrics in PostgreSQL.

`make demo CLUSTER=1`: the same file goes to the API pod of the in-cluster release, and its
transform runs as a SparkApplication whose driver and executor pods the Spark Operator starts.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from lakehouse.devtools.sample_data import orders
from lakehouse.settings import S3Settings
from lakehouse.storage.s3 import S3Location, read_parquet

CLI = str(Path(sys.executable).with_name("lakehouse"))


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def cli(*args: str) -> str:
    """Runs the CLI, echoing its output live (progress and phases), and returns it."""
    with subprocess.Popen([CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as process:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            lines.append(line)
    if process.returncode:
        raise SystemExit(f"`lakehouse {' '.join(args)}` exited with {process.returncode}")
    return "".join(lines)


def main() -> int:
    work_dir = Path(os.environ.get("LAKEHOUSE_STATE_DIR", ".state")) / "demo"
    work_dir.mkdir(parents=True, exist_ok=True)
    sample = orders(1000, invalid_every=50, seed=int(time.time()))
    csv_path = work_dir / f"orders-{time.strftime('%Y%m%d-%H%M%S')}.csv"
    csv_path.write_bytes(sample.csv_bytes())

    # `make demo NIFI=1`: the stack runs NiFi, and the file goes through the NiFi ingest engine.
    engine = ["--ingest-engine", "nifi"] if os.environ.get("NIFI") == "1" else []
    namespace = os.environ["LAKEHOUSE_NAMESPACE"]
    in_cluster = os.environ.get("LAKEHOUSE_DEMO_IN_CLUSTER") == "1"
    if in_cluster:
        # The CLI and kubectl go to the release in the cluster; the CLI reads its URL from the environment.
        os.environ["LAKEHOUSE_API_URL"] = os.environ["LAKEHOUSE_CLUSTER_API_URL"]
        namespace = os.environ["LAKEHOUSE_CLUSTER_NAMESPACE"]
        engine += ["--transform-engine", "spark"]
    shown = " ".join(["lakehouse upload", csv_path.name, "--dataset orders", *engine, "--wait"])
    say(f"{shown}   (1000 rows, {len(sample.rejected)} invalid)")
    uploaded_at = _database_now()
    output = cli("upload", str(csv_path), "--dataset", "orders", *engine, "--wait")
    upload_id = re.search(r"upload (\S+) accepted", output).group(1)

    say(f"kubectl get ingestionrun {upload_id}")
    subprocess.run(
        [os.environ["KUBECTL"], "get", "ir", upload_id, "-n", namespace, "-o", "wide"],
        check=False,
    )
    if in_cluster:
        selector = f"lakehouse.dev/run={upload_id}"
        say(f"kubectl get sparkapplications,pods -n {namespace} -l {selector}   (the pods that did the work)")
        subprocess.run(
            [os.environ["KUBECTL"], "get", "sparkapplications,pods", "-n", namespace, "-l", selector], check=False
        )

    status = json.loads(_quiet_cli("--json", "run", upload_id))
    table = status["table"]

    say(f"lakehouse table {table} --rows 8")
    cli("table", table, "--rows", "8")

    say(f"quarantined rows ({status['quarantinePath']})")
    s3 = S3Settings().client()
    for row in read_parquet(s3, S3Location.parse(status["quarantinePath"])).to_pylist()[:8]:
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
    show_scheduled_maintenance(table, uploaded_at)
    print(f"\nrun {upload_id} succeeded: {status['counts']}")
    return 0


def show_scheduled_maintenance(table: str, since: dt.datetime, timeout: float = 150) -> None:
    """Waits for the operator's first scheduled maintenance run of the table that started after `since` (the
    upload; every 60 s on the local stack, LAKEHOUSE_MAINTENANCE_INTERVAL_SECONDS) to end, and shows what it did.

    The first, not the latest: a run that started while the upload was under way may still be working when the demo
    gets here (on a table with thousands of small files it takes a minute), and the run after it finds nothing left.
    """
    say(f"table maintenance of {table}, on the operator's schedule (the table_maintenance log)")
    query = (
        "SELECT started_at, status, message, files_rewritten FROM table_maintenance WHERE table_name = %s "
        "AND trigger = 'schedule' AND started_at > %s ORDER BY started_at LIMIT 1"
    )
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as db:
        deadline = time.monotonic() + timeout
        while ((row := db.execute(query, (table, since)).fetchone()) is None or row[1] == "running") and (
            time.monotonic() < deadline
        ):
            time.sleep(2)
    if row is None or row[1] == "running":
        print(f"  no scheduled run ended in {timeout:.0f} s; see make logs SERVICE=operator")
        return
    started_at, run_status, message, files_rewritten = row
    print(f"  {started_at:%H:%M:%S} {run_status}: {message}")
    if files_rewritten == 0:
        print(
            "  (no partition holds maintenance.compaction.min_input_files small files yet: a partition is compacted"
            " once that many uploads have added to it; docs/runbooks/table-maintenance.md)"
        )


def _database_now() -> dt.datetime:
    """PostgreSQL's clock, which stamps the maintenance log."""
    with psycopg.connect(os.environ["DATABASE_URL"]) as db:
        return db.execute("SELECT now()").fetchone()[0]  # type: ignore[index]


def _quiet_cli(*args: str) -> str:
    return subprocess.run([CLI, *args], capture_output=True, text=True, check=True).stdout


if __name__ == "__main__":
    sys.exit(main())
