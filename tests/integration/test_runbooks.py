"""The recovery runbooks (docs/runbooks/), run block by block against the real stack.

Each test sets up what the runbook's incident leaves behind (in a namespace, a database and a bronze table of
its own, with its own operator), runs every marked command block of the runbook as written, and checks the
outcome in PostgreSQL, Iceberg and Kubernetes.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kubernetes import client
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.table.snapshots import ancestors_of

from lakehouse.bronze.writer import RUN_ID_PROPERTY
from lakehouse.devtools.sample_data import orders
from lakehouse.k8s.ingestionrun import GROUP, PLURAL, VERSION
from tests.utils.operator_process import OperatorProcess, free_port
from tests.utils.runbooks import Runbook
from tests.utils.runs import TERMINAL, create_run, get_run, run_body, upload, wait_for_phase

pytestmark = pytest.mark.integration

PG_BIN = "/usr/lib/postgresql/15/bin"  # devstack/services/postgres.sh (POSTGRES_MAJOR)
METADATA_TABLES = ["workflow_execution", "job_metrics", "data_quality_metrics", "table_lineage", "event_outbox"]


@dataclass
class Scene:
    """The test's namespace (its own: `lakehouse replay --failed` sees only its runs), bronze table and servers."""

    namespace: str
    runs: client.CustomObjectsApi
    s3: Any
    catalog: Catalog
    target: dict[str, str]
    log_dir: Path

    @property
    def table(self) -> str:
        return f"{self.target['namespace']}.{self.target['table']}"

    @contextmanager
    def operator(self, env: dict[str, str] | None = None) -> Iterator[OperatorProcess]:
        process = OperatorProcess(self.namespace, self.log_dir / f"operator-{uuid.uuid4().hex[:6]}.log", env).start()
        try:
            yield process
        finally:
            process.stop()

    def load(self, data: bytes) -> str:
        """Uploads a CSV of orders, runs it to its end, and returns the run's name (its upload id)."""
        up = upload(self.s3, data, "orders", "csv")
        create_run(self.runs, self.namespace, run_body(up, "orders", target=self.target))
        wait_for_phase(self.runs, self.namespace, up.upload_id, TERMINAL, timeout=180, poll=0.3)
        return up.upload_id

    def run(self, name: str) -> dict[str, Any]:
        return get_run(self.runs, self.namespace, name)

    def run_names(self) -> set[str]:
        items = self.runs.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL)["items"]
        return {item["metadata"]["name"] for item in items}

    def rows(self) -> list[tuple[str, int]]:
        """(upload_id, order_id) of every row of the table."""
        scan = self.catalog.load_table(self.table).scan(selected_fields=("upload_id", "order_id"))
        return sorted((row["upload_id"], row["order_id"]) for row in scan.to_arrow().to_pylist())

    def live_runs(self) -> list[str]:
        """The runs of the current snapshot and its ancestors, newest first."""
        table = self.catalog.load_table(self.table)
        ancestry = ancestors_of(table.current_snapshot(), table.metadata)
        return [s.summary.additional_properties[RUN_ID_PROPERTY] for s in ancestry]

    def snapshot_of(self, run: str) -> int:
        snapshots = self.catalog.load_table(self.table).snapshots()
        return next(s.snapshot_id for s in snapshots if s.summary.additional_properties[RUN_ID_PROPERTY] == run)


@pytest.fixture
def scene(
    own_namespace: str, custom_objects: client.CustomObjectsApi, s3: Any, catalog: Catalog, tmp_path: Path
) -> Iterator[Scene]:
    target = {"namespace": "bronze_it", "table": f"runbook_{uuid.uuid4().hex[:8]}"}
    yield Scene(own_namespace, custom_objects, s3, catalog, target, tmp_path)
    with contextlib.suppress(NoSuchTableError):  # a test that failed early made none
        catalog.drop_table(f"{target['namespace']}.{target['table']}")


def lakehouse(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI of this checkout, as the runbooks call it."""
    command = [sys.executable, "-m", "lakehouse_cli.main", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def failure_reason(run: dict[str, Any]) -> str | None:
    return next((c["reason"] for c in run["status"].get("conditions", []) if c["type"] == "Failed"), None)


# ---- PostgreSQL metadata -------------------------------------------------------------------------------------


def metadata_rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(url) as conn:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in METADATA_TABLES}


def platform_deployments(apps: client.AppsV1Api, namespace: str, names: list[str]) -> None:
    """Stand-ins for the release's Deployments, for the runbook to scale; their pods are never scheduled."""
    for name in names:
        labels = {"app.kubernetes.io/name": name}
        apps.create_namespaced_deployment(
            namespace,
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": name, "labels": labels},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "nodeSelector": {"lakehouse.dev/runbook-test": "no-such-node"},
                            "containers": [{"name": "main", "image": "lakehouse-runbook-test:none"}],
                        },
                    },
                },
            },
        )


def replicas(apps: client.AppsV1Api, namespace: str, names: list[str]) -> list[int]:
    return [apps.read_namespaced_deployment(name, namespace).spec.replicas for name in names]


def drop_databases(url: str, pattern: str) -> None:
    with psycopg.connect(url, autocommit=True) as admin:
        for (name,) in admin.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (pattern,)).fetchall():
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_restore_postgres_metadata(
    scene: Scene, migrated_database_url: str, kube_api: client.ApiClient, tmp_path: Path
) -> None:
    live = conninfo_to_dict(migrated_database_url)
    live_db = str(live["dbname"])
    restore_db = f"{live_db}_restore"
    deployments = ["lakehouse-operator", "lakehouse-api"]
    apps = client.AppsV1Api(kube_api)
    platform_deployments(apps, scene.namespace, deployments)
    runbook = Runbook(
        "restore-postgres-metadata.md",
        {
            "PG_BIN": PG_BIN,
            "PGHOST": str(live["host"]),
            "PGPORT": str(live["port"]),
            "PGUSER": str(live["user"]),
            "PGPASSWORD": str(live["password"]),
            "PGDATABASE": live_db,
            "BACKUP_FILE": str(tmp_path / "lakehouse.dump"),
            "RESTORE_DB": restore_db,
            "LAKEHOUSE_NAMESPACE": scene.namespace,
            "OPERATOR_DEPLOYMENT": deployments[0],
            "API_DEPLOYMENT": deployments[1],
            "OPERATOR_REPLICAS": "1",
            "API_REPLICAS": "1",
        },
    )
    operator_env = {"DATABASE_URL": migrated_database_url}
    try:
        with scene.operator(operator_env):
            before = scene.load(orders(5).csv_bytes())
        at_backup = metadata_rows(migrated_database_url)  # nothing writes now: the backup holds exactly these
        assert [row[0] for row in at_backup["workflow_execution"]] == [before]
        assert all(at_backup[t] for t in METADATA_TABLES), at_backup

        runbook.run("backup")
        with scene.operator(operator_env):
            after = scene.load(orders(5, first_order_id=100).csv_bytes())
        with psycopg.connect(migrated_database_url, autocommit=True) as conn:  # the incident: rows deleted
            conn.execute("TRUNCATE workflow_execution, event_outbox CASCADE")

        assert "TABLE DATA public workflow_execution" in runbook.run("check")
        runbook.run("stop-writers")
        assert replicas(apps, scene.namespace, deployments) == [0, 0]
        runbook.run("restore")
        assert "migrations: 0 applied, up to date" in runbook.run("verify-restore")
        runbook.run("switch")
        runbook.run("start-writers")
        assert replicas(apps, scene.namespace, deployments) == [1, 1]
        assert "Succeeded" in runbook.run("verify")
        assert runbook.unrun() == []

        # The platform's database name now holds exactly the backup's rows: the run before it, not the one after.
        restored = metadata_rows(migrated_database_url)
        assert restored == at_backup
        assert after not in {row[0] for row in restored["workflow_execution"]}
        # The damaged database is kept, as the incident left it.
        with psycopg.connect(migrated_database_url, autocommit=True) as conn:
            (kept,) = conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s", (f"{live_db}_broken_%",)
            ).fetchone()
        assert metadata_rows(make_conninfo(migrated_database_url, dbname=kept))["workflow_execution"] == []
    finally:
        drop_databases(migrated_database_url, restore_db)
        drop_databases(migrated_database_url, f"{live_db}_broken_%")


def test_rollback_bronze_table(scene: Scene) -> None:
    good, bad, later = orders(4), orders(4, first_order_id=1000), orders(4, first_order_id=2000)
    with scene.operator() as operator:
        first, bad_run, second = (scene.load(sample.csv_bytes()) for sample in (good, bad, later))
        for run in (first, bad_run, second):
            assert scene.run(run)["status"]["phase"] == "Succeeded"
        runbook = Runbook(
            "rollback-bronze-table.md",
            {
                "TABLE": scene.table,
                "BAD_UPLOAD": bad_run,
                "GOOD_SNAPSHOT": str(scene.snapshot_of(first)),
                "RERUN_RUNS": second,
                "LAKEHOUSE_NAMESPACE": scene.namespace,
            },
        )

        assert bad_run in runbook.run("inspect")
        assert runbook.run("in-flight").strip() == ""
        dry_run = runbook.run("dry-run")
        assert bad_run in dry_run and second in dry_run and first not in dry_run
        assert len(scene.rows()) == 12  # the dry run changed nothing
        # Before the rollback the re-run is refused: the upload's rows are in the table.
        assert "a replay would add its rows a second time" in runbook.run("rerun", expect_exit=2)
        assert scene.run_names() == {first, bad_run, second}

        runbook.run("rollback")
        # The bad load's snapshot is no longer an ancestor of the current one: no rolling "forward" onto it.
        refused = lakehouse("rollback", scene.table, "--to-snapshot", str(scene.snapshot_of(bad_run)))
        assert refused.returncode == 2 and "not the current snapshot or one of its ancestors" in refused.stderr
        assert f"{second}-r1" in runbook.run("rerun")
        assert "was replayed already" in runbook.run("rerun")  # the step twice: still one replay
        runbook.run("verify")
        assert runbook.unrun() == []
        assert operator.alive

    replay = scene.run(f"{second}-r1")
    assert replay["status"]["phase"] == "Succeeded" and replay["status"]["counts"]["written"] == 4
    assert replay["metadata"]["labels"]["lakehouse.dev/replay-of"] == second
    assert scene.run_names() == {first, bad_run, second, f"{second}-r1"}
    # Exactly the good loads' rows, once each; none of the bad load's.
    assert scene.rows() == sorted([(first, i) for i in good.valid] + [(second, i) for i in later.valid])
    assert scene.live_runs() == [f"{second}-r1", first]


def test_replay_failed_runs(scene: Scene) -> None:
    samples = [orders(3, first_order_id=1), orders(3, first_order_id=10)]
    # The incident: an operator deployed with a catalog address where nothing answers.
    broken = {"ICEBERG_CATALOG_URI": f"http://127.0.0.1:{free_port()}", "LAKEHOUSE_MAX_ATTEMPTS": "2"}
    with scene.operator(broken):
        failed = [scene.load(sample.csv_bytes()) for sample in samples]
        wrong_file = scene.load(b"id,who,what\n1,2,3\n")
    for run in failed:
        assert failure_reason(scene.run(run)) == "RetriesExhausted"
    assert failure_reason(scene.run(wrong_file)) == "MissingColumns"

    runbook = Runbook(
        "replay-failed-runs.md",
        {"LAKEHOUSE_NAMESPACE": scene.namespace, "DATASET": "orders", "REASON": "RetriesExhausted"},
    )
    with scene.operator():  # the fix: the operator with the catalog's real address
        inspected = runbook.run("inspect")
        assert all(run in inspected for run in [*failed, wrong_file])
        replayed = runbook.run("replay")
        assert all(f"{run}-r1" in replayed for run in failed)
        verified = runbook.run("verify")
        assert all(f"{run}-r1" in verified for run in failed)
        assert runbook.unrun() == []

    for run in failed:
        replay = scene.run(f"{run}-r1")
        assert replay["status"]["phase"] == "Succeeded" and replay["status"]["counts"]["written"] == 3
        assert scene.run(run)["status"]["phase"] == "Failed"  # history stays
    # The file's own failure is not replayed, and nothing was replayed twice.
    assert scene.run_names() == {*failed, wrong_file, *(f"{run}-r1" for run in failed)}
    assert scene.rows() == sorted((run, i) for run, sample in zip(failed, samples, strict=True) for i in sample.valid)
