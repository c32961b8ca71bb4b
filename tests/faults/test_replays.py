"""Work done twice must land once: a run's handlers replayed three times, and one upload POSTed three times
with one Idempotency-Key. Judged by the rows (bronze, objects, PostgreSQL, events), not only by phases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client
from pyiceberg.catalog import Catalog

from lakehouse.devtools.sample_data import orders
from lakehouse.k8s.ingestionrun import GROUP, PLURAL, VERSION
from tests.utils.api_checks import post_upload
from tests.utils.api_process import running_api
from tests.utils.exactly_once import assert_landed_once
from tests.utils.operator_process import OperatorProcess
from tests.utils.runs import create_run, run_body, upload, wait_for_phase, watch_for_phase

pytestmark = pytest.mark.integration
TARGET = {"namespace": "bronze_faults", "table": "orders"}
KOPF_ANNOTATIONS = f"{GROUP}/"  # Kopf's progress and last-handled state (handlers.configure)


def replay_from(custom_objects: client.CustomObjectsApi, namespace: str, name: str, phase: str) -> str:
    """Makes the operator run the run's handlers again from `phase`: Kopf's annotations removed (no record of
    what it handled) and the status put back in that phase, as a lost status write or a replayed watch event
    would leave it. Returns the resource version of the rewound run."""
    run = custom_objects.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    forget = {key: None for key in run["metadata"].get("annotations", {}) if key.startswith(KOPF_ANNOTATIONS)}
    custom_objects.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name, {"metadata": {"annotations": forget}}
    )
    rewound = custom_objects.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, name, {"status": {"phase": phase, "attempts": 0}}
    )
    return rewound["metadata"]["resourceVersion"]


def test_handlers_replayed_three_times_land_the_run_once(
    run_namespace: str,
    custom_objects: client.CustomObjectsApi,
    s3: Any,
    catalog: Catalog,
    migrated_database_url: str,
    tmp_path: Path,
) -> None:
    sample = orders(300, invalid_every=25, seed=31)
    up = upload(s3, sample.csv_bytes(), "orders", "csv")
    operator = OperatorProcess(run_namespace, tmp_path / "operator.log", {"DATABASE_URL": migrated_database_url})
    operator.start()
    try:
        create_run(custom_objects, run_namespace, run_body(up, "orders", target=TARGET))
        first = wait_for_phase(custom_objects, run_namespace, up.upload_id, {"Succeeded", "Failed"}, timeout=120)
        assert first["status"]["phase"] == "Succeeded", first["status"]
        # From the start (every handler), from the ingest, and from the bronze commit.
        for phase in ("Pending", "Ingesting", "Transforming"):
            since = replay_from(custom_objects, run_namespace, up.upload_id, phase)
            run = watch_for_phase(custom_objects, run_namespace, up.upload_id, {"Succeeded", "Failed"}, since)
            assert run["status"]["phase"] == "Succeeded", (phase, run["status"])
            assert run["status"]["snapshotId"] == first["status"]["snapshotId"], "the replay committed again"
    finally:
        operator.stop()

    log = (tmp_path / "operator.log").read_text()
    # The ingest ran three times (the first run, the replays from Pending and from Ingesting), whichever handler
    # ran it: a handler goes straight on to the in-process stages after its own (handlers._go_on).
    assert log.count("(RawWritten)") == 3, "the ingest was not replayed twice"
    # Each replayed bronze commit found the run's snapshot (lakehouse/bronze/writer.py) and appended nothing.
    assert log.count(f"run {up.upload_id} already committed") == 3
    assert_landed_once(
        run, len(sample.valid), len(sample.rejected), catalog=catalog, s3=s3, database_url=migrated_database_url
    )


def run_names(custom_objects: client.CustomObjectsApi, namespace: str) -> set[str]:
    runs = custom_objects.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]
    return {run["metadata"]["name"] for run in runs}


def test_one_upload_posted_three_times_with_one_key_is_one_run(
    run_namespace: str,
    custom_objects: client.CustomObjectsApi,
    s3: Any,
    catalog: Catalog,
    migrated_database_url: str,
    tmp_path: Path,
) -> None:
    """Twice while the first is in flight, once after it has finished: every answer is the first run."""
    sample = orders(300, invalid_every=25, seed=32)
    data, key = sample.csv_bytes(), {"Idempotency-Key": f"replay-{run_namespace}"}
    env = {"DATABASE_URL": migrated_database_url}
    before = run_names(custom_objects, run_namespace)
    operator = OperatorProcess(run_namespace, tmp_path / "operator.log", env).start()
    try:
        with (
            running_api(run_namespace, tmp_path / "api.log", env) as api,
            httpx.Client(base_url=api.url, headers=api.headers, timeout=60) as http,
        ):
            answers = [post_upload(http, data, headers=key) for _ in range(2)]
            name = answers[0].json()["runName"]
            run = wait_for_phase(custom_objects, run_namespace, name, {"Succeeded", "Failed"}, timeout=120)
            answers.append(post_upload(http, data, headers=key))
    finally:
        operator.stop()

    assert [a.status_code for a in answers] == [202, 202, 202], [a.text for a in answers]
    assert [a.json()["replayed"] for a in answers] == [False, True, True]
    assert {a.json()["runName"] for a in answers} == {name}
    assert run_names(custom_objects, run_namespace) - before == {name}
    assert_landed_once(
        run, len(sample.valid), len(sample.rejected), catalog=catalog, s3=s3, database_url=migrated_database_url
    )
