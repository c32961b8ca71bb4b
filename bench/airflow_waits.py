"""Benchmark: what Airflow spends while many lakehouse_ingest runs wait, deferred to the triggerer vs poked in
reschedule mode (the waits of the DAG before the provider).

For each mode: a real Airflow 3 (tests/utils/airflow_services.py, its metadata database on the stack's PostgreSQL)
and an operator that holds every run before its bronze commit; --runs DAG runs each create a run and reach
`wait_succeeded`; then, for --window seconds, the CPU time of each Airflow component (its process and every child it
started, task processes included) and of the PostgreSQL backends serving Airflow's database is measured, with what
the metadata database shows of the waits (triggers, reschedules); then the runs are let go and must all succeed.
Needs the stack. Results: bench/results/airflow_waits.json.

    .venv/bin/python bench/airflow_waits.py [--runs 20] [--window 120]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import RESULTS_DIR, write_results
from kubernetes import client, config

from lakehouse.devtools.sample_data import orders
from lakehouse.settings import S3Settings
from tests.utils.airflow_services import AirflowServices
from tests.utils.operator_process import OperatorProcess
from tests.utils.pauses import pause_env, release, wait_until_held
from tests.utils.runs import upload
from tests.utils.waiting import wait_until

HELD = "transform.before-commit"
TICKS = os.sysconf("SC_CLK_TCK")


def session_cpu_seconds(session: int) -> float:
    """CPU time of every live process of a session, with what its finished children used (reaped by them)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session:  # field 6 of stat: the session id
            total += sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
    return total / TICKS


def database_cpu_seconds(database: str) -> float:
    """CPU time of the live PostgreSQL backends connected to `database` (titled "postgres: <role> <database> ...")."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            title = (stat.parent / "cmdline").read_bytes().decode(errors="replace").split()
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if title[:1] == ["postgres:"] and title[2:3] == [database]:
            total += sum(int(value) for value in fields[11:13])  # utime, stime: backends have no children
    return total / TICKS


def wait_records(airflow: AirflowServices) -> dict[str, int]:
    """What the metadata database holds of the waits: deferred wait tasks, their triggers, reschedules so far."""
    (deferred, triggers, reschedules), *_ = airflow.query(
        "SELECT (SELECT count(*) FROM task_instance WHERE task_id = 'wait_succeeded' AND state = 'deferred'),"
        " (SELECT count(*) FROM task_instance WHERE task_id = 'wait_succeeded' AND trigger_id IS NOT NULL),"
        " (SELECT count(*) FROM task_reschedule)"
    )
    return {"wait_tasks_deferred": deferred, "wait_tasks_with_trigger": triggers, "reschedules_recorded": reschedules}


def cpu_seconds(airflow: AirflowServices) -> dict[str, float]:
    used = {name: session_cpu_seconds(process.pid) for name, process in airflow.processes.items()}
    return {**used, "postgres-backends": database_cpu_seconds(airflow.database)}


def measure(mode: str, runs: int, window: float, api: client.CustomObjectsApi, kubeconfig: str) -> dict[str, Any]:
    namespace = f"bench-af-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(api.api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    work = Path(tempfile.mkdtemp(prefix=f"airflow-waits-{mode}-"))
    # Each held run holds a handler thread: the pool must outnumber them. A commit per run, so each reaches its own
    # pause point (in a group commit the others would queue behind the first held one, never marked held).
    env = {
        **pause_env(work, HELD),
        "LAKEHOUSE_PAUSE_SECONDS": "1800",
        "LAKEHOUSE_OPERATOR_WORKERS": str(runs + 4),
        "LAKEHOUSE_GROUP_COMMIT_MAX_RUNS": "1",
    }
    operator = OperatorProcess(namespace, work / "operator.log", env).start()
    connection = {"conn_type": "kubernetes", "extra": {"kube_config_path": kubeconfig}}
    airflow = AirflowServices(
        work / "airflow",
        {
            "LAKEHOUSE_NAMESPACE": namespace,
            "LAKEHOUSE_AIRFLOW_DEFERRABLE": "true" if mode == "deferred" else "false",
            "AIRFLOW_CONN_LAKEHOUSE_DEFAULT": json.dumps(connection),
            "AIRFLOW__CORE__PARALLELISM": str(runs + 4),
            "AIRFLOW__OPENLINEAGE__DISABLED": "true",
        },
    )
    try:
        airflow.start()
        airflow.wait_for_dags("lakehouse_ingest")
        s3 = S3Settings().client()
        uploads = [upload(s3, orders(20).csv_bytes(), "orders", "csv") for _ in range(runs)]
        for up in uploads:
            conf = {"upload_id": up.upload_id, "dataset": "orders", "source_uri": up.uri, "format": "csv"}
            airflow.trigger("lakehouse_ingest", up.upload_id, {**conf, "namespace": namespace})
        wait_until_held(work, HELD, [up.upload_id for up in uploads], timeout=1800)
        # Measured only once every wait is in its mode: a wait task still starting up would count its process.
        settled: set[str] = set()
        settling = "deferred" if mode == "deferred" else "up_for_reschedule"

        def all_settled() -> bool:
            for up in uploads:
                if airflow.task_states("lakehouse_ingest", up.upload_id).get("wait_succeeded") == settling:
                    settled.add(up.upload_id)
            return len(settled) == runs

        wait_until(all_settled, f"{runs} DAG runs waiting on Succeeded, {settling}", timeout=1800, poll=5)
        time.sleep(10)  # the last waits settle into their mode
        records_before = wait_records(airflow)  # its connection closed before the CPU is read
        before = cpu_seconds(airflow)
        time.sleep(window)
        used = {name: round(seconds - before[name], 1) for name, seconds in cpu_seconds(airflow).items()}
        records_after = wait_records(airflow)
        states = [airflow.task_states("lakehouse_ingest", up.upload_id)["wait_succeeded"] for up in uploads]
        release(work, HELD)
        for up in uploads:
            assert airflow.wait_for_run("lakehouse_ingest", up.upload_id, timeout=1800) == "success"
        return {
            "mode": mode,
            "runs_waiting": runs,
            "window_seconds": window,
            "cpu_seconds_in_window": used,
            "cpu_percent_of_one_core": {name: round(100 * value / window, 1) for name, value in used.items()},
            "wait_task_states_seen": sorted(set(states)),
            "wait_tasks_deferred": records_after["wait_tasks_deferred"],
            "wait_tasks_with_trigger": records_after["wait_tasks_with_trigger"],
            "reschedules_in_window": records_after["reschedules_recorded"] - records_before["reschedules_recorded"],
            "load_average": os.getloadavg(),
            "airflow_metadata_database": "PostgreSQL (the stack's server)",
        }
    finally:
        release(work, HELD)
        airflow.stop()
        operator.stop()
        core.delete_namespace(namespace)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--window", type=float, default=120)
    parser.add_argument("--modes", nargs="+", default=["deferred", "reschedule"], choices=["deferred", "reschedule"])
    args = parser.parse_args()
    kubeconfig = os.environ["KUBECONFIG"]
    config.load_kube_config(config_file=kubeconfig)
    api = client.CustomObjectsApi()
    # A mode measured alone keeps the other's figures from the last run.
    previous = RESULTS_DIR / "airflow_waits.json"
    kept = json.loads(previous.read_text())["results"] if previous.exists() else []
    results = [result for result in kept if result["mode"] not in args.modes]
    for mode in args.modes:
        results.append(measure(mode, args.runs, args.window, api, kubeconfig))
        print(json.dumps(results[-1]), flush=True)
        write_results(  # after each mode, so a run cut short keeps what it measured
            "airflow_waits",
            f"CPU seconds of Airflow's components over {args.window} s while {args.runs} lakehouse_ingest runs wait on "
            "Succeeded: deferred to the triggerer vs poked every 5 s in reschedule mode",
            results,
        )


if __name__ == "__main__":
    main()
