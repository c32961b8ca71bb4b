from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from lakehouse.k8s.ingestionrun.spec import IngestEngineName, TransformEngineName


class OperatorSettings(BaseSettings):
    """Operator behaviour, from the environment (the chart's ConfigMap/Deployment env)."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    namespace: str = Field(default="lakehouse", alias="LAKEHOUSE_NAMESPACE")
    # The one bucket runs may read (access.py); the upload API writes there.
    uploads_bucket: str = Field(default="uploads", alias="LAKEHOUSE_UPLOADS_BUCKET")
    raw_bucket: str = Field(default="raw", alias="LAKEHOUSE_RAW_BUCKET")
    quarantine_bucket: str = Field(default="quarantine", alias="LAKEHOUSE_QUARANTINE_BUCKET")
    default_ingest_engine: IngestEngineName = Field(default=IngestEngineName.BUILTIN, alias="LAKEHOUSE_INGEST_ENGINE")
    default_transform_engine: TransformEngineName = Field(
        default=TransformEngineName.ARROW, alias="LAKEHOUSE_TRANSFORM_ENGINE"
    )
    # Files above this size go to Spark when the run does not choose (and Spark is available).
    spark_threshold_bytes: int = Field(default=256 * 1024 * 1024, alias="LAKEHOUSE_SPARK_THRESHOLD_BYTES")
    max_attempts: int = Field(default=5, ge=1, alias="LAKEHOUSE_MAX_ATTEMPTS")
    retry_base_delay: float = Field(default=2.0, gt=0, alias="LAKEHOUSE_RETRY_BASE_DELAY")
    retry_max_delay: float = Field(default=60.0, gt=0, alias="LAKEHOUSE_RETRY_MAX_DELAY")
    metrics_port: int = Field(default=0, ge=0, alias="LAKEHOUSE_METRICS_PORT")  # 0: no metrics server
    health_port: int = Field(default=0, ge=0, alias="LAKEHOUSE_HEALTH_PORT")  # 0: no liveness endpoint
    # Where both listen: every address of a pod's own network; a host process sets its one address.
    listen_host: str = Field(default="0.0.0.0", alias="LAKEHOUSE_LISTEN_HOST")
    workers: int = Field(default=16, ge=1, alias="LAKEHOUSE_OPERATOR_WORKERS")
    # The most runs appended to one table in one Iceberg commit (engines/arrow.py, group_commit.py); 1: a commit
    # per run, concurrent ones conflicting and retried.
    group_commit_max_runs: int = Field(default=100, ge=1, alias="LAKEHOUSE_GROUP_COMMIT_MAX_RUNS")
    # The outbox relay (outbox_relay.py): how often it looks for events other processes left, and how long
    # a phase change waits for its event to reach Kafka before its status moves (none while Kafka is down).
    outbox_poll_seconds: float = Field(default=1.0, gt=0, alias="LAKEHOUSE_OUTBOX_POLL_SECONDS")
    event_delivery_seconds: float = Field(default=2.0, ge=0, alias="LAKEHOUSE_EVENT_DELIVERY_SECONDS")
    # Finished runs are deleted this long after they ended (run_cleanup.py); 0 keeps them.
    finished_run_ttl_seconds: int = Field(default=0, ge=0, alias="LAKEHOUSE_FINISHED_RUN_TTL_SECONDS")
    # Replicas (peering.py): the KopfPeering object they share; empty runs one operator alone (standalone).
    # A killed active replica's entry lapses after the lifetime, and the standby takes over then.
    peering_name: str = Field(default="", alias="LAKEHOUSE_PEERING_NAME")
    peering_lifetime: int = Field(default=15, ge=10, alias="LAKEHOUSE_PEERING_LIFETIME_SECONDS")
    # Iceberg namespaces, comma-separated, where a run may name any table (tests, trials; `bronze_*`: every
    # namespace that starts so); empty by default, so a run writes only its contract's bronze table (access.py).
    sandbox_namespaces: str = Field(default="", alias="LAKEHOUSE_SANDBOX_NAMESPACES")
    # Table maintenance (maintenance_scheduler.py): on or off, how often it looks for tables that are due, and an
    # interval that replaces every dataset's own when set (the local stack's short one; 0 keeps the contracts').
    maintenance_enabled: bool = Field(default=True, alias="LAKEHOUSE_MAINTENANCE_ENABLED")
    maintenance_check_seconds: float = Field(default=60.0, gt=0, alias="LAKEHOUSE_MAINTENANCE_CHECK_SECONDS")
    maintenance_interval_seconds: int = Field(default=0, ge=0, alias="LAKEHOUSE_MAINTENANCE_INTERVAL_SECONDS")

    def is_sandbox(self, namespace: str) -> bool:
        """Whether runs may name any table in this Iceberg namespace; an entry ending in * is a prefix."""
        entries = [entry.strip() for entry in self.sandbox_namespaces.split(",") if entry.strip()]
        return any(namespace.startswith(e[:-1]) if e.endswith("*") else namespace == e for e in entries)

    def retry_delay(self, retry: int) -> float:
        """Exponential backoff: base, 2*base, 4*base, ... capped."""
        return min(self.retry_base_delay * 2**retry, self.retry_max_delay)

    def retry_window(self) -> float:
        """Seconds from a stage's first failed attempt to its last attempt, not counting the attempts' own time
        (bounded: every server call has a timeout). A server back within it costs the run nothing; with the
        defaults it is 2 + 4 + 8 + 16 = 30 s."""
        return sum(self.retry_delay(retry) for retry in range(self.max_attempts - 1))
