"""SIGKILL the operator in every phase of a run on the NiFi engine, and of one on the Spark engine (local
spark-submit): after each restart the run goes on, and it lands once.

Each engine's run has several crash points armed (operator/lakehouse_operator/faults.py), at least one in
each phase and every one where its engine works. A point fires once, so the operator is killed at the
first, restarted, killed at the next, and so on until the run ends. `nifi.handed-over` and
`spark-submit.started` kill it right after it handed the run's work to a job that outlives it. The points where the
built-in and Arrow engines work are left to test_operator_crash.py: each restart costs seconds here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from lakehouse_operator.faults import CRASH_POINTS, ENGINE_CRASH_POINTS
from pyiceberg.catalog import Catalog

from lakehouse.devtools.sample_data import orders
from tests.utils.exactly_once import assert_landed_once
from tests.utils.operator_process import OperatorProcess
from tests.utils.runs import TERMINAL, create_run, get_run, run_body, upload
from tests.utils.stack import stack_env
from tests.utils.waiting import wait_until

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class EngineCase:
    engines: dict[str, str]
    env: dict[str, str]
    crash_points: tuple[str, ...]


CASES = {
    "nifi": EngineCase(
        {"ingest": "nifi", "transform": "arrow"},
        {"LAKEHOUSE_NIFI_POLL_SECONDS": "1"},
        (
            "validate.after-event",
            "nifi.handed-over",
            "ingest.after-raw",
            "ingest.after-event",
            "raw-ready.before-transition",
            "transform.after-commit",
        ),
    ),
    "spark": EngineCase(
        {"ingest": "builtin", "transform": "spark"},
        {
            "LAKEHOUSE_SPARK_ENABLED": "true",
            "LAKEHOUSE_SPARK_MODE": "local",
            "LAKEHOUSE_SPARK_MASTER": "local[2]",
            "LAKEHOUSE_SPARK_POLL_SECONDS": "1",
        },
        (
            "validate.after-event",
            "ingest.after-event",
            "raw-ready.before-transition",
            "spark-submit.started",
            "transform.after-commit",
            "transform.after-event",
        ),
    ),
}


def phase_of(custom_objects: client.CustomObjectsApi, namespace: str, name: str) -> str | None:
    return (get_run(custom_objects, namespace, name).get("status") or {}).get("phase")


@pytest.mark.parametrize("engine", sorted(CASES))
def test_killed_in_every_phase_the_run_still_lands_once(
    engine: str,
    run_namespace: str,
    custom_objects: client.CustomObjectsApi,
    s3: Any,
    catalog: Catalog,
    migrated_database_url: str,
    tmp_path: Path,
) -> None:
    if engine == "nifi":
        stack_env("NIFI_API_URL", "NIFI_LISTEN_URL")
    case = CASES[engine]
    engines, points = case.engines, case.crash_points
    assert set(points) <= {*CRASH_POINTS, *ENGINE_CRASH_POINTS}
    env = {
        **case.env,
        "DATABASE_URL": migrated_database_url,
        "LAKEHOUSE_CRASH_POINTS": ",".join(points),
        "LAKEHOUSE_CRASH_STATE_DIR": str(tmp_path),
        "LAKEHOUSE_SPARK_WORK_DIR": str(tmp_path / "spark"),  # the same for every restart
    }
    sample = orders(400, invalid_every=20, seed=41)
    up = upload(s3, sample.csv_bytes(), "orders", "csv")
    target = {"namespace": "bronze_faults", "table": f"orders_{engine}_{up.upload_id[-8:]}"}
    table = f"{target['namespace']}.{target['table']}"

    phases_at_kill: list[str | None] = []
    operator = OperatorProcess(run_namespace, tmp_path / "operator.log", env).start()
    create_run(custom_objects, run_namespace, run_body(up, "orders", engines=engines, target=target))
    try:
        for _ in range(len(points) + 1):
            wait_until(
                lambda: not operator.alive or phase_of(custom_objects, run_namespace, up.upload_id) in TERMINAL,
                "a kill or the end of the run",
                timeout=400,
                poll=0.2,
            )
            if operator.alive:
                break
            assert operator.wait_exit(timeout=10) == -9, "the operator exited, but not at a crash point"
            phases_at_kill.append(phase_of(custom_objects, run_namespace, up.upload_id))
            operator.start()
        run = get_run(custom_objects, run_namespace, up.upload_id)
    finally:
        operator.stop()

    fired = {path.name.removeprefix("crashed-").removesuffix(f"-{up.upload_id}") for path in tmp_path.glob("crashed-*")}
    assert fired == set(points), f"killed at {sorted(fired)}"
    assert set(phases_at_kill) >= {"Pending", "Ingesting", "RawReady", "Transforming"}, phases_at_kill
    assert run["status"]["engines"] == engines
    if engine == "spark":  # every restart followed the one job, or read what it had committed
        assert (tmp_path / "operator.log").read_text().count(f"spark-submit for run {up.upload_id}") == 1
    assert_landed_once(
        run, len(sample.valid), len(sample.rejected), catalog=catalog, s3=s3, database_url=migrated_database_url
    )
    catalog.drop_table(table)
