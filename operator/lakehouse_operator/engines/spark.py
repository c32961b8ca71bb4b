"""Transform with Spark (lakehouse/jobs/bronze_transform.py), for files too large for the Arrow engine.

Two engines run the same job with the same arguments, chosen by LAKEHOUSE_SPARK_MODE:
- `operator` (engines.spark_operator): one SparkApplication per run, named after the run and owned by
  it, for the Spark Operator to run in the cluster.
- `local` (engines.spark_submit): spark-submit --master local[*] as a child process of the operator
  (the devstack has no Spark Operator), one per run, that outlives an operator restart.

Neither holds a handler thread: each call looks at the job once and answers StillRunning until it
ends. The job commits at most once per run (run id in the snapshot summary), so re-submitting after
a crash is safe.
"""

from __future__ import annotations

import importlib.metadata
import tempfile
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pyiceberg.catalog import Catalog

from lakehouse.bronze.writer import find_run_snapshot
from lakehouse_operator.engines.base import RunContext, TransformEngine, TransformOutcome
from lakehouse_operator.engines.spark_application import job_arguments

# The job ships in the package. An installed package is a folder of real files, and spark-submit needs
# one that lasts as long as the job, which may outlive this operator process.
JOB_FILE = Path(str(resources.files("lakehouse.jobs") / "bronze_transform.py"))


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
    job_file: Path | None = Field(default=None, alias="LAKEHOUSE_SPARK_JOB_FILE")  # None: JOB_FILE
    # One directory per run: its process's lock, output and exit status, found again after a restart.
    work_dir: Path = Field(
        default=Path(tempfile.gettempdir()) / "lakehouse-spark-submit", alias="LAKEHOUSE_SPARK_WORK_DIR"
    )


def _installed_spark_version() -> str | None:
    try:
        return importlib.metadata.version("pyspark")
    except importlib.metadata.PackageNotFoundError:
        return None


class SparkTransformEngine(TransformEngine):
    """What both Spark engines share: the job's arguments."""

    def __init__(self, settings: SparkSettings) -> None:
        self._settings = settings

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
            contract=run.contract.model_dump_json(),
        )


def committed_outcome(catalog: Catalog, run: RunContext) -> TransformOutcome:
    """What the run's job committed, read from the bronze table: the snapshot that carries the run id and the
    rows it added, or no snapshot and 0 rows."""
    table = catalog.load_table(run.target_table)
    snapshot_id = find_run_snapshot(table, run.name)
    snapshot = table.snapshot_by_id(snapshot_id) if snapshot_id is not None else None
    summary = snapshot.summary if snapshot else None
    added = summary.additional_properties.get("added-records", 0) if summary else 0
    return TransformOutcome(".".join(table.name()), snapshot_id, int(added))
