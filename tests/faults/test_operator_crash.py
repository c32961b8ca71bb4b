"""SIGKILL the operator in every phase; after a restart every run finishes exactly once.

Two kinds of kill: at named crash points (the windows that matter, hit every time), and at
whatever moment a phase is observed from outside (what an OOM-kill or node loss looks like).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from lakehouse_operator.faults import CRASH_POINTS
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import EqualTo

from lakehouse.devtools.sample_data import orders
from tests.utils.kafka_events import events_for
from tests.utils.operator_process import OperatorProcess
from tests.utils.runs import create_run, get_run, run_body, upload, wait_for_phase, watch_for_phase

pytestmark = pytest.mark.integration
TARGET = {"namespace": "bronze_faults", "table": "orders"}


def bronze_count(catalog: Catalog, upload_id: str) -> int:
    table = catalog.load_table(f"{TARGET['namespace']}.{TARGET['table']}")
    return table.scan(row_filter=EqualTo("upload_id", upload_id)).to_arrow().num_rows


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_crash_at_each_step_then_restart_finishes_exactly_once(
    point: str,
    run_namespace: str,
    custom_objects: client.CustomObjectsApi,
    s3: Any,
    catalog: Catalog,
    tmp_path: Path,
) -> None:
    sample = orders(300, invalid_every=25, seed=len(point))
    up = upload(s3, sample.csv_bytes(), "orders", "csv")
    env = {"LAKEHOUSE_CRASH_POINTS": point, "LAKEHOUSE_CRASH_STATE_DIR": str(tmp_path)}
    first = OperatorProcess(run_namespace, tmp_path / "operator.log", env).start()
    create_run(custom_objects, run_namespace, run_body(up, "orders", target=TARGET))

    assert first.wait_exit(timeout=120) == -9, "the operator should have been killed at " + point
    assert (tmp_path / f"crashed-{point}-{up.upload_id}").exists()
    phase_at_crash = (get_run(custom_objects, run_namespace, up.upload_id).get("status") or {}).get("phase")

    second = OperatorProcess(run_namespace, tmp_path / "operator.log", env).start()
    try:
        run = wait_for_phase(custom_objects, run_namespace, up.upload_id, {"Succeeded", "Failed"}, timeout=180)
    finally:
        second.stop()

    assert run["status"]["phase"] == "Succeeded", (phase_at_crash, run["status"])
    assert bronze_count(catalog, up.upload_id) == len(sample.valid)
    assert run["status"]["counts"]["written"] == len(sample.valid)
    events = events_for(
        os.environ["KAFKA_BOOTSTRAP_SERVERS"],
        up.upload_id,
        ["file-uploaded", "raw-data-ready", "bronze-layer-complete"],
    )
    # A step replayed after a crash may publish again, but always with the same CloudEvent id.
    assert {e["topic"]: e["id"] for e in events}.keys() == {
        "file-uploaded",
        "raw-data-ready",
        "bronze-layer-complete",
    }
    assert len({e["id"] for e in events}) == 3


@pytest.mark.parametrize("phase", ["Pending", "Ingesting", "RawReady", "Transforming"])
def test_kill_when_a_phase_is_seen_then_restart(
    phase: str,
    run_namespace: str,
    custom_objects: client.CustomObjectsApi,
    s3: Any,
    catalog: Catalog,
    tmp_path: Path,
) -> None:
    sample = orders(150_000, invalid_every=1000, seed=5)
    up = upload(s3, sample.csv_bytes(), "orders", "csv")
    first = OperatorProcess(run_namespace, tmp_path / "operator.log").start()
    created = create_run(custom_objects, run_namespace, run_body(up, "orders", target=TARGET))
    try:
        seen = watch_for_phase(
            custom_objects,
            run_namespace,
            up.upload_id,
            {phase, "Succeeded", "Failed"},
            created["metadata"]["resourceVersion"],
        )
    finally:
        first.kill()
    assert seen["status"]["phase"] == phase, f"the run skipped {phase}: {seen['status']}"
    # The kill came before the run finished, so the second operator really had to take it over.
    left = get_run(custom_objects, run_namespace, up.upload_id)["status"]
    assert left["phase"] not in {"Succeeded", "Failed"}, f"killed only after the run ended: {left}"

    second = OperatorProcess(run_namespace, tmp_path / "operator.log").start()
    try:
        run = wait_for_phase(custom_objects, run_namespace, up.upload_id, {"Succeeded", "Failed"}, timeout=300)
    finally:
        second.stop()

    assert run["status"]["phase"] == "Succeeded", run["status"]
    assert bronze_count(catalog, up.upload_id) == len(sample.valid), f"killed in {phase}"
