"""A real Airflow 3 for tests: api-server, scheduler, dag-processor and triggerer as child processes.

They run from Airflow's own virtualenv through devstack/airflow.sh (this checkout's DAGs and provider), on an
AIRFLOW_HOME of the test's own, with LocalExecutor and a metadata database of their own on the stack's PostgreSQL, as
in a deployment (copied from a template migrated once per Airflow install; dropped by stop()). SQLite is not fit for
four processes writing at once: they queued on its one write lock (REST calls timed out) and its queries ran inside the
scheduler's process, so the scheduler's CPU counted the database's work. Connections come from AIRFLOW_CONN_*
variables; KUBECONFIG is removed from their environment, so the provider reaches the cluster only through its
connection. The REST API answers without login (simple auth manager, all admins), on 127.0.0.1 only; the log servers
are off (they would bind every interface).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg import errors, sql

from lakehouse.settings import DatabaseSettings
from tests.utils.operator_process import free_port
from tests.utils.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_SH = REPO_ROOT / "devstack" / "airflow.sh"
COMPONENTS = {
    "api-server": ["api-server"],
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer", "--skip-serve-logs"],
}
DONE = {"success", "failed"}


def _venv_name() -> str:
    """devstack/airflow.sh's name for the Airflow virtualenv: keyed on the lock's hash."""
    return "airflow-venv-" + hashlib.sha256((REPO_ROOT / "airflow" / "requirements.lock").read_bytes()).hexdigest()[:12]


def _server_url() -> str:
    """The stack's PostgreSQL (DATABASE_URL): its server and role host the Airflow databases."""
    return DatabaseSettings().url.get_secret_value()


def _database_url(database: str) -> str:
    """Airflow's SQLAlchemy URL for a database on the stack's server (psycopg 3, sync and async)."""
    server = urlsplit(_server_url())
    return server._replace(scheme="postgresql+psycopg", path=f"/{database}").geturl()


def _execute(statement: str, *databases: str) -> None:
    """A statement on the server, each {} a database name, quoted (autocommit: CREATE DATABASE cannot be in a
    transaction)."""
    with psycopg.connect(_server_url(), autocommit=True) as connection:
        connection.execute(sql.SQL(statement).format(*map(sql.Identifier, databases)))


def _database_exists(database: str) -> bool:
    with psycopg.connect(_server_url()) as connection:
        return connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone() is not None


class AirflowServices:
    def __init__(self, home: Path, extra_env: dict[str, str]) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database = f"airflow_{uuid.uuid4().hex[:12]}"
        self.env = {key: value for key, value in os.environ.items() if key != "KUBECONFIG"}
        self.env.update(
            {
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "8",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                # Parsing imports Airflow and the providers; on a busy 2-core machine that outlasts the default 30 s.
                "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "180",
                "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "240",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",  # parsed once: the DAGs do not change
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
                # One Fernet key for every component: without it each may start with a key of its own (or none,
                # before airflow.cfg is written) and a trigger's kwargs encrypted by one fail to decode in another.
                "AIRFLOW__CORE__FERNET_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
                # A triggerer that stopped heartbeating hands its triggers on after this (default 30 s).
                "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "15",
                "PYTHONUNBUFFERED": "1",
                # The password reaches Airflow in its environment, never on a command line.
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": _database_url(self.database),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": _database_url(self.database),
                **extra_env,
            }
        )
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def log_path(self, component: str) -> Path:
        return self.home / f"{component}.log"

    def prepare(self) -> None:
        """AIRFLOW_HOME and a migrated database: `airflow db migrate` takes a minute here, so it runs once per
        Airflow install into a template database, and each instance copies it (CREATE DATABASE ... TEMPLATE)."""
        self.home.mkdir(parents=True, exist_ok=True)
        venv = _venv_name()
        (self.home / f".migrated-{venv}").touch()  # airflow.sh's marker: no migrate of a SQLite file in AIRFLOW_HOME
        self.cli("setup", timeout=1200)  # installs and byte-compiles once, before four components would at once
        template = venv.replace("-", "_")
        if not _database_exists(template):
            # Migrated under a name of its own, then renamed: two checkouts doing this at once never share one.
            staged = f"{template}_{os.getpid()}"
            _execute("CREATE DATABASE {}", staged)
            scratch = self.home / "template"
            scratch.mkdir()
            (scratch / f".migrated-{venv}").touch()  # airflow.sh would migrate first: once is enough
            url = _database_url(staged)
            migrate_env = {
                "AIRFLOW_HOME": str(scratch),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url,
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": url,
            }
            self.cli("db", "migrate", env=migrate_env, timeout=600)
            shutil.rmtree(scratch)
            try:
                _execute("ALTER DATABASE {} RENAME TO {}", staged, template)
            except errors.DuplicateDatabase:
                _execute("DROP DATABASE {}", staged)
        _execute("CREATE DATABASE {} TEMPLATE {}", self.database, template)

    def start(self, timeout: float = 300) -> AirflowServices:
        self.prepare()
        for component in COMPONENTS:
            self.start_component(component)
        wait_until(lambda: self._answers("/api/v2/version"), "Airflow's api-server", timeout, poll=2)
        return self

    def start_component(self, component: str) -> None:
        log = self.log_path(component).open("ab")
        # A session of its own: the component and the children it forks are killed as one.
        self.processes[component] = subprocess.Popen(
            [AIRFLOW_SH, *COMPONENTS[component]],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self, component: str) -> None:
        """SIGKILL: the component and its children die without a word, as in a node failure."""
        process = self.processes.pop(component)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for component, process in list(self.processes.items()):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
            self.processes.pop(component)
        _execute("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.database)

    def query(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows from this Airflow's metadata database."""
        with psycopg.connect(_server_url(), dbname=self.database) as connection:
            return connection.execute(statement, params).fetchall()

    def cli(self, *args: str, env: dict[str, str] | None = None, timeout: float = 300, check: bool = True) -> str:
        """The output of an `airflow` command in this Airflow's environment (stdout and stderr when check=False)."""
        done = subprocess.run(
            [AIRFLOW_SH, *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if not check:
            return done.stdout + done.stderr
        assert done.returncode == 0, f"airflow {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
        return done.stdout

    def _answers(self, path: str) -> bool:
        try:
            self.get(path)
            return True
        except OSError:
            return False

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(
            self.url + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def wait_for_dags(self, *dag_ids: str, timeout: float = 300) -> None:
        def parsed() -> bool:
            known = {dag["dag_id"] for dag in self.get("/api/v2/dags?limit=100")["dags"]}
            return set(dag_ids) <= known

        try:
            wait_until(parsed, f"DAGs {dag_ids} parsed", timeout, poll=2)
        except TimeoutError as error:
            raise TimeoutError(f"{error}; import errors: {self.get('/api/v2/importErrors')}") from error

    def trigger(self, dag_id: str, run_id: str, conf: dict[str, Any]) -> None:
        self.request(
            "POST", f"/api/v2/dags/{dag_id}/dagRuns", {"dag_run_id": run_id, "logical_date": None, "conf": conf}
        )

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any] | None:
        try:
            return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns?limit=100")["dag_runs"]

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float) -> str:
        """The DAG run's final state."""
        run = wait_until(
            lambda: (found := self.dag_run(dag_id, run_id)) is not None and found["state"] in DONE and found,
            f"DAG run {dag_id}/{run_id} finished",
            timeout,
            poll=2,
        )
        return run["state"]

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        instances = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        return {
            ti["task_id"] + (f"[{ti['map_index']}]" if ti["map_index"] >= 0 else ""): ti["state"] for ti in instances
        }

    def task_log(self, dag_id: str, run_id: str, task_id: str) -> str:
        """Every attempt's log of the task, as the worker wrote it."""
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        return "\n".join(path.read_text() for path in sorted(folder.rglob("*.log")))

    def xcom(self, dag_id: str, run_id: str, task_id: str) -> Any:
        """The task's return value (the API hands back what the database holds: JSON, sometimes as a string)."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
        value = self.get(path)["value"]
        return json.loads(value) if isinstance(value, str) else value
