"""Transform with Spark (spark/bronze_transform.py), for files too large for the Arrow engine.

Two modes (LAKEHOUSE_SPARK_MODE):
- `operator`: one SparkApplication per run, named after the run and owned by it, for the Spark
  Operator to run in the cluster. Each handler call creates it if missing and reads its state:
  not finished -> StillRunning, so no handler thread waits on a cluster job.
- `local`: spark-submit --master local[*] as a child process, run to completion in the handler
  thread (the devstack has no Spark Operator). Same job, same arguments, same environment.

Either way the job commits at most once per run (run id in the snapshot summary), so re-submitting
after a crash is safe, and the outcome is read back from the table's snapshots.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pyiceberg.catalog import Catalog

from lakehouse.bronze.writer import find_run_snapshot
from lakehouse.catalog.spark import iceberg_spark_conf
from lakehouse.settings import PlatformSettings
from lakehouse_operator.engines.base import (
    RunContext,
    RunRejectedError,
    StillRunning,
    TransformEngine,
    TransformOutcome,
)
from lakehouse_operator.engines.spark_manifest import (
    GROUP,
    PLURAL,
    VERSION,
    PodResources,
    SecretRef,
    SparkApplicationParams,
    application_name,
    job_arguments,
    render_spark_application,
)

log = logging.getLogger(__name__)
REPOSITORY = Path(__file__).resolve().parents[3]
RUNNING_STATES = {"", "NEW", "SUBMITTED", "RUNNING", "PENDING_RERUN", "INVALIDATING", "SUCCEEDING", "FAILING"}
FAILED_STATES = {"FAILED", "SUBMISSION_FAILED"}
EXIT_REJECTED = 2  # spark/bronze_transform.py: the data or the contract is wrong, retrying cannot help


class SparkSettings(BaseSettings):
    """The Spark engine's configuration, from the operator's environment."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    # Off unless asked for: once registered, large files go to Spark (engine_selection).
    enabled: bool = Field(default=False, alias="LAKEHOUSE_SPARK_ENABLED")
    mode: Literal["operator", "local"] = Field(default="operator", alias="LAKEHOUSE_SPARK_MODE")
    timeout_seconds: float = Field(default=3600, gt=0, alias="LAKEHOUSE_SPARK_TIMEOUT_SECONDS")
    poll_seconds: float = Field(default=15, gt=0, alias="LAKEHOUSE_SPARK_POLL_SECONDS")
    driver_memory: str = Field(default="1g", alias="LAKEHOUSE_SPARK_DRIVER_MEMORY")

    # operator mode: the SparkApplication
    # The image of this release (never `latest`: a node must not run whatever was pushed last).
    image: str = Field(
        default_factory=lambda: f"lakehouse-spark:{importlib.metadata.version('lakehouse-ingest')}",
        alias="LAKEHOUSE_SPARK_IMAGE",
    )
    image_pull_policy: str = Field(default="IfNotPresent", alias="LAKEHOUSE_SPARK_IMAGE_PULL_POLICY")
    # The Spark of the job image (SparkApplication.spec.sparkVersion); the chart sets it. Empty: this
    # interpreter's pyspark (local mode, the devstack), which the platform image does not have.
    spark_version: str | None = Field(default=None, alias="LAKEHOUSE_SPARK_VERSION")

    @model_validator(mode="after")
    def _spark_version_known(self) -> SparkSettings:
        # A configuration error stops the operator at start, instead of failing every Spark run.
        self.spark_version = self.spark_version or _installed_spark_version()
        if self.enabled and self.mode == "operator" and not self.spark_version:
            raise ValueError("LAKEHOUSE_SPARK_VERSION must be set: pyspark is not installed here")
        return self

    main_application_file: str = Field(
        default="local:///opt/lakehouse/spark/bronze_transform.py", alias="LAKEHOUSE_SPARK_MAIN_FILE"
    )
    service_account: str = Field(default="spark", alias="LAKEHOUSE_SPARK_SERVICE_ACCOUNT")
    driver_cores: int = Field(default=1, ge=1, alias="LAKEHOUSE_SPARK_DRIVER_CORES")
    # CPU requests below the cores (e.g. "250m"), so a job fits a small node; empty: request the cores.
    driver_core_request: str | None = Field(default=None, alias="LAKEHOUSE_SPARK_DRIVER_CORE_REQUEST")
    executor_core_request: str | None = Field(default=None, alias="LAKEHOUSE_SPARK_EXECUTOR_CORE_REQUEST")
    executor_cores: int = Field(default=1, ge=1, alias="LAKEHOUSE_SPARK_EXECUTOR_CORES")
    executor_memory: str = Field(default="2g", alias="LAKEHOUSE_SPARK_EXECUTOR_MEMORY")
    executor_instances: int = Field(default=2, ge=1, alias="LAKEHOUSE_SPARK_EXECUTOR_INSTANCES")
    retries: int = Field(default=2, ge=0, alias="LAKEHOUSE_SPARK_RETRIES")
    # Secrets the pods read their credentials from; the keys are the variable names.
    s3_secret: str = Field(default="lakehouse-s3", alias="LAKEHOUSE_SPARK_S3_SECRET")
    database_secret: str = Field(default="lakehouse-database", alias="LAKEHOUSE_SPARK_DATABASE_SECRET")
    catalog_token_secret: str | None = Field(default=None, alias="LAKEHOUSE_SPARK_CATALOG_TOKEN_SECRET")
    contracts_configmap: str | None = Field(default=None, alias="LAKEHOUSE_CONTRACTS_CONFIGMAP")

    # local mode: spark-submit
    spark_submit: str | None = Field(default=None, alias="LAKEHOUSE_SPARK_SUBMIT")  # default: pyspark's
    master: str = Field(default="local[*]", alias="LAKEHOUSE_SPARK_MASTER")
    jars: str = Field(default="", alias="SPARK_JARS")  # comma-separated: `devstack/spark.sh env`
    job_file: Path = Field(default=REPOSITORY / "spark" / "bronze_transform.py", alias="LAKEHOUSE_SPARK_JOB_FILE")


def _installed_spark_version() -> str | None:
    try:
        return importlib.metadata.version("pyspark")
    except importlib.metadata.PackageNotFoundError:
        return None


class SparkJobError(RuntimeError):
    """The local job failed in a way a retry may fix (the operator retries with backoff)."""


class SparkTransformEngine(TransformEngine):
    name = "spark"

    def __init__(
        self,
        settings: SparkSettings,
        platform: PlatformSettings,
        catalog: Callable[[], Catalog],
        custom_objects: Callable[[], client.CustomObjectsApi] = client.CustomObjectsApi,
    ) -> None:
        self._settings = settings
        self._platform = platform
        self._catalog = catalog
        self._custom_objects = custom_objects

    def transform(self, run: RunContext, raw_uri: str) -> TransformOutcome | StillRunning:
        if self._settings.mode == "local":
            return self._run_local(run, raw_uri)
        return self._follow_application(run, raw_uri)

    def arguments(self, run: RunContext, raw_uri: str, contracts_dir: str | None = None) -> list[str]:
        return job_arguments(
            run_id=run.name,
            upload_id=run.upload_id,
            dataset=run.dataset,
            raw_uri=raw_uri,
            processing_date=run.processing_date,
            ingest_timestamp=run.ingest_timestamp,
            target_table=run.target_table,
            contracts_dir=contracts_dir,
        )

    # operator mode

    def manifest(self, run: RunContext, raw_uri: str) -> dict[str, Any]:
        s = self._settings
        contracts_dir = "/etc/lakehouse/contracts" if s.contracts_configmap else None
        s3, catalog = self._platform.s3, self._platform.catalog
        env = {
            "AWS_REGION": s3.region,
            "S3_PATH_STYLE": str(s3.path_style).lower(),
            "ICEBERG_CATALOG_URI": catalog.uri,
            "ICEBERG_WAREHOUSE": catalog.warehouse,
            "ICEBERG_CATALOG_NAME": catalog.name,
        }
        if s3.endpoint_url:
            env["S3_ENDPOINT_URL"] = s3.endpoint_url
        driver_secrets = {"DATABASE_URL": SecretRef(s.database_secret, "DATABASE_URL")}
        if s.catalog_token_secret:
            driver_secrets["ICEBERG_CATALOG_TOKEN"] = SecretRef(s.catalog_token_secret, "ICEBERG_CATALOG_TOKEN")
        return render_spark_application(
            SparkApplicationParams(
                name=application_name(run.name),
                namespace=run.namespace,
                owner=run.owner,
                dataset=run.dataset,
                image=s.image,
                image_pull_policy=s.image_pull_policy,
                main_application_file=s.main_application_file,
                arguments=self.arguments(run, raw_uri, contracts_dir),
                spark_version=s.spark_version,
                service_account=s.service_account,
                spark_conf=iceberg_spark_conf(catalog, s3),
                env=env,
                secret_env={
                    "AWS_ACCESS_KEY_ID": SecretRef(s.s3_secret, "AWS_ACCESS_KEY_ID"),
                    "AWS_SECRET_ACCESS_KEY": SecretRef(s.s3_secret, "AWS_SECRET_ACCESS_KEY"),
                },
                driver_secret_env=driver_secrets,
                driver=PodResources(
                    cores=s.driver_cores,
                    memory=s.driver_memory,
                    core_limit=str(s.driver_cores),
                    core_request=s.driver_core_request or None,
                ),
                executor=PodResources(
                    cores=s.executor_cores,
                    memory=s.executor_memory,
                    core_limit=str(s.executor_cores),
                    core_request=s.executor_core_request or None,
                ),
                executor_instances=s.executor_instances,
                retries=s.retries,
                contracts_configmap=s.contracts_configmap,
            )
        )

    def _follow_application(self, run: RunContext, raw_uri: str) -> TransformOutcome | StillRunning:
        api = self._custom_objects()
        name = application_name(run.name)
        app = _get(api, run.namespace, name)
        if app is None:
            try:
                api.create_namespaced_custom_object(GROUP, VERSION, run.namespace, PLURAL, self.manifest(run, raw_uri))
                return StillRunning(f"submitted SparkApplication {name}", delay=self._settings.poll_seconds)
            except ApiException as error:
                if error.status != 409:  # 409: created by an earlier attempt of this handler
                    raise
            app = _get(api, run.namespace, name) or {}
        owners = {ref.get("uid") for ref in app.get("metadata", {}).get("ownerReferences") or []}
        if run.owner["uid"] not in owners:
            # Left by an earlier run of the same name; garbage collection removes it with that run.
            return StillRunning(
                f"SparkApplication {name} belongs to another run; waiting for its removal",
                delay=self._settings.poll_seconds,
            )
        state = (app.get("status") or {}).get("applicationState") or {}
        phase = state.get("state") or ""
        if phase == "COMPLETED":
            return self._outcome(run)
        if phase in FAILED_STATES:
            detail = state.get("errorMessage") or "no error message; see the driver pod's log"
            raise RunRejectedError(
                "SparkApplicationFailed", f"SparkApplication {run.namespace}/{name} {phase}: {detail}"
            )
        age = _age_seconds(app)
        if age > self._settings.timeout_seconds:
            _delete(api, run.namespace, name)  # stops its pods; a new run starts afresh
            raise RunRejectedError(
                "SparkTimedOut",
                f"SparkApplication {run.namespace}/{name} did not finish in {self._settings.timeout_seconds:.0f}s "
                f"(last state {phase or 'NEW'}); it was deleted",
            )
        return StillRunning(
            f"SparkApplication {name} is {phase or 'NEW'} ({age:.0f}s)", delay=self._settings.poll_seconds
        )

    def _outcome(self, run: RunContext, already_committed: bool = False) -> TransformOutcome:
        table = self._catalog().load_table(run.target_table)
        snapshot_id = find_run_snapshot(table, run.name)
        snapshot = table.snapshot_by_id(snapshot_id) if snapshot_id is not None else None
        summary = snapshot.summary if snapshot else None
        added = summary.additional_properties.get("added-records", 0) if summary else 0
        return TransformOutcome(".".join(table.name()), snapshot_id, int(added), already_committed)

    # local mode

    def local_command(self, run: RunContext, raw_uri: str) -> list[str]:
        s = self._settings
        jars = [jar for jar in s.jars.split(",") if jar]
        if not jars:
            raise SparkJobError(
                "SPARK_JARS is not set: run `devstack/spark.sh install` and export `devstack/spark.sh env`"
            )
        return [
            s.spark_submit or str(_spark_home() / "bin" / "spark-submit"),
            "--master", s.master,
            "--name", application_name(run.name),
            "--driver-memory", s.driver_memory,
            "--conf", "spark.ui.enabled=false",
            # One JVM in local mode: the class path is enough, --jars would copy 370 MB per run.
            "--conf", f"spark.driver.extraClassPath={':'.join(jars)}",
            str(s.job_file),
            *self.arguments(run, raw_uri),
        ]  # fmt: skip

    def _run_local(self, run: RunContext, raw_uri: str) -> TransformOutcome:
        command = self.local_command(run, raw_uri)
        env = {
            **os.environ,
            "SPARK_HOME": os.environ.get("SPARK_HOME") or str(_spark_home()),
            # Driver and Python workers use this interpreter, so they import this very project.
            "PYSPARK_PYTHON": sys.executable,
            "PYSPARK_DRIVER_PYTHON": sys.executable,
        }
        log.info("spark-submit for run %s: %s", run.name, " ".join(command))
        # Own session, so a timeout can end spark-submit's JVM and its Python driver together.
        with subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        ) as process:
            try:
                stdout, stderr = process.communicate(timeout=self._settings.timeout_seconds)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.communicate()
                raise RunRejectedError(
                    "SparkTimedOut", f"the Spark job did not finish in {self._settings.timeout_seconds:.0f}s"
                ) from None
        result = _last_json(stdout)
        if process.returncode == 0 and "table" in result:
            return TransformOutcome(
                result["table"], result["snapshot_id"], result["rows_written"], result["already_committed"]
            )
        message = result.get("error") or _tail(stderr)
        if process.returncode == EXIT_REJECTED:
            raise RunRejectedError("SparkJobRejected", message)
        raise SparkJobError(f"the Spark job exited with status {process.returncode}: {message}")


def _spark_home() -> Path:
    """pyspark's package folder, a complete SPARK_HOME (found without importing pyspark)."""
    spec = importlib.util.find_spec("pyspark")
    if spec is None or spec.origin is None:
        raise SparkJobError("pyspark is not installed; local mode runs its spark-submit")
    return Path(spec.origin).resolve().parent


def _last_json(stdout: str) -> dict[str, Any]:
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    return {}


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _get(api: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        return api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def _delete(api: client.CustomObjectsApi, namespace: str, name: str) -> None:
    try:
        api.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    except ApiException as error:
        if error.status != 404:
            raise


def _age_seconds(app: dict[str, Any]) -> float:
    created = app.get("metadata", {}).get("creationTimestamp")
    if not created:
        return 0.0
    started = dt.datetime.fromisoformat(str(created).replace("Z", "+00:00"))
    return (dt.datetime.now(dt.UTC) - started).total_seconds()
