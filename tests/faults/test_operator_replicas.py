"""Two operator replicas on one namespace (Kopf peering, operator/lakehouse_operator/peering.py): one handles
runs, the other waits; SIGKILL the active one mid-run and the other takes over, and the run lands once.

The takeover is measured from the kill to the first change the standby makes to the run, and printed
(run pytest with -s); it is at most the peering lifetime (LAKEHOUSE_PEERING_LIFETIME_SECONDS, 15 s) plus the
standby's listing of the runs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from pyiceberg.catalog import Catalog

from lakehouse.devtools.sample_data import orders
from tests.utils.exactly_once import assert_landed_once
from tests.utils.operator_process import OperatorProcess
from tests.utils.peering import ensure_peering_crd, peers
from tests.utils.runs import TERMINAL, create_run, get_run, run_body, upload, wait_for_phase, watch_for_phase
from tests.utils.waiting import wait_until

pytestmark = pytest.mark.integration
TARGET = {"namespace": "bronze_faults", "table": "orders"}
PEERING = "lakehouse-operator"
RESUMED = "Resuming operations"  # Kopf's log line when a paused operator starts handling again


@pytest.fixture(scope="module", autouse=True)
def peering_crd(kube_api: client.ApiClient) -> None:
    ensure_peering_crd(kube_api)


def replica(name: str, namespace: str, database_url: str, log_dir: Path) -> OperatorProcess:
    env = {"LAKEHOUSE_PEERING_NAME": PEERING, "POD_ID": name, "DATABASE_URL": database_url}
    return OperatorProcess(namespace, log_dir / f"{name}.log", env).start()


def log_of(process: OperatorProcess) -> str:
    return process.log_path.read_text(errors="replace")


@pytest.mark.parametrize("phase", ["Ingesting", "Transforming"])
def test_the_standby_takes_over_a_run_when_the_active_replica_is_killed(
    phase: str,
    run_namespace: str,
    custom_objects: client.CustomObjectsApi,
    s3: Any,
    catalog: Catalog,
    migrated_database_url: str,
    tmp_path: Path,
) -> None:
    sample = orders(150_000, invalid_every=1000, seed=6)
    up = upload(s3, sample.csv_bytes(), "orders", "csv")
    active = replica("replica-a", run_namespace, migrated_database_url, tmp_path)
    standby = replica("replica-b", run_namespace, migrated_database_url, tmp_path)
    try:
        # The older process has the higher priority: replica-a handles runs, replica-b pauses.
        recorded = wait_until(
            lambda: (p := peers(custom_objects, run_namespace, PEERING)).keys() >= {"replica-a", "replica-b"} and p,
            "both replicas in the peering object",
            timeout=30,
        )
        assert recorded["replica-a"]["priority"] > recorded["replica-b"]["priority"], recorded
        # Kopf starts a peered operator paused; it logs only when it resumes.
        assert RESUMED not in log_of(standby)

        created = create_run(custom_objects, run_namespace, run_body(up, "orders", target=TARGET))
        seen = watch_for_phase(
            custom_objects, run_namespace, up.upload_id, {phase} | TERMINAL, created["metadata"]["resourceVersion"]
        )
        active.kill()
        killed_at = time.monotonic()
        assert seen["status"]["phase"] == phase, f"the run skipped {phase}: {seen['status']}"
        left = get_run(custom_objects, run_namespace, up.upload_id)
        assert left["status"]["phase"] not in TERMINAL, f"killed only after the run ended: {left['status']}"
        assert up.upload_id not in log_of(standby), "the paused standby handled the run"

        resumed = wait_until(
            lambda: RESUMED in log_of(standby) and time.monotonic(),
            "the standby resumed",
            timeout=60,
            poll=0.1,
        )
        moved = wait_until(
            lambda: (
                get_run(custom_objects, run_namespace, up.upload_id)["metadata"]["resourceVersion"]
                != left["metadata"]["resourceVersion"]
                and time.monotonic()
            ),
            "the standby's first change to the run",
            timeout=60,
            poll=0.05,
        )
        run = wait_for_phase(custom_objects, run_namespace, up.upload_id, {"Succeeded", "Failed"}, timeout=300)
    finally:
        active.kill()
        standby.stop()

    print(
        f"killed in {phase}: the standby resumed {resumed - killed_at:.1f}s after the kill and changed the run "
        f"{moved - killed_at:.1f}s after it"
    )
    assert up.upload_id in log_of(standby), "the run finished without the standby"
    assert_landed_once(
        run, len(sample.valid), len(sample.rejected), catalog=catalog, s3=s3, database_url=migrated_database_url
    )


def test_a_replica_that_stops_cleanly_hands_over_without_waiting_for_its_entry_to_lapse(
    run_namespace: str,
    custom_objects: client.CustomObjectsApi,
    s3: Any,
    catalog: Catalog,
    migrated_database_url: str,
    tmp_path: Path,
) -> None:
    """SIGTERM (a rollout, a drained node): the active replica removes its entry as it exits, so the standby
    resumes on that change instead of after the lifetime."""
    active = replica("replica-a", run_namespace, migrated_database_url, tmp_path)
    standby = replica("replica-b", run_namespace, migrated_database_url, tmp_path)
    try:
        wait_until(
            lambda: peers(custom_objects, run_namespace, PEERING).keys() >= {"replica-a", "replica-b"},
            "both replicas in the peering object",
            timeout=30,
        )
        active.stop()
        stopped_at = time.monotonic()
        assert active.process is not None and active.process.returncode == 0, log_of(active)[-3000:]
        assert "replica-a" not in peers(custom_objects, run_namespace, PEERING), "the stopped replica left its entry"
        resumed = wait_until(lambda: RESUMED in log_of(standby) and time.monotonic(), "the standby resumed", 60, 0.1)

        sample = orders(200, invalid_every=20, seed=7)
        up = upload(s3, sample.csv_bytes(), "orders", "csv")
        create_run(custom_objects, run_namespace, run_body(up, "orders", target=TARGET))
        run = wait_for_phase(custom_objects, run_namespace, up.upload_id, {"Succeeded", "Failed"}, timeout=120)
    finally:
        active.kill()
        standby.stop()
    print(f"clean stop: the standby resumed {resumed - stopped_at:.1f}s after the active replica exited")
    assert_landed_once(
        run, len(sample.valid), len(sample.rejected), catalog=catalog, s3=s3, database_url=migrated_database_url
    )
