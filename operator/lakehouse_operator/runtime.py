"""The operator's long-lived dependencies, built once at start-up."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cached_property

from kubernetes import client
from pyiceberg.catalog import Catalog

from lakehouse.catalog.connect import rest_catalog
from lakehouse.contracts.cluster import ClusterContracts, datasets_lister
from lakehouse.contracts.registry import ContractRegistry
from lakehouse.db.maintenance_log import MaintenanceLog
from lakehouse.db.metadata import MetadataStore
from lakehouse.db.outbox import LINEAGE, EventOutbox
from lakehouse.events import KafkaEventPublisher
from lakehouse.k8s.ingestionrun import GROUP, PLURAL, VERSION
from lakehouse.k8s.ingestionrun.spec import IngestEngineName, TransformEngineName
from lakehouse.lineage.events import CatalogFacts
from lakehouse.lineage.publisher import LineagePublisher
from lakehouse.lineage.settings import LineageSettings
from lakehouse.maintenance.runner import maintain
from lakehouse.settings import PlatformSettings
from lakehouse_operator import metrics
from lakehouse_operator.engines.arrow import ArrowTransformEngine
from lakehouse_operator.engines.base import IngestEngine, TransformEngine
from lakehouse_operator.engines.builtin import BuiltinIngestEngine
from lakehouse_operator.engines.nifi import NiFiIngestEngine, NiFiSettings
from lakehouse_operator.engines.spark import SparkSettings
from lakehouse_operator.engines.spark_operator import SparkApplicationEngine
from lakehouse_operator.engines.spark_submit import SparkSubmitEngine
from lakehouse_operator.lineage_records import LineageRecorder
from lakehouse_operator.maintenance_scheduler import MaintenanceScheduler
from lakehouse_operator.outbox_relay import OutboxRelay
from lakehouse_operator.records import RunRecords
from lakehouse_operator.run_cleanup import FinishedRunCleanup
from lakehouse_operator.settings import OperatorSettings
from lakehouse_operator.status_writer import StatusWriter


@dataclass
class Runtime:
    settings: OperatorSettings
    platform: PlatformSettings = field(default_factory=PlatformSettings)

    @cached_property
    def contracts(self) -> ClusterContracts:
        """The namespace's Datasets over the contract files (LAKEHOUSE_CONTRACTS_DIR or the packaged ones)."""
        return ClusterContracts(
            datasets_lister(client.CustomObjectsApi, self.settings.namespace), ContractRegistry.default()
        )

    @cached_property
    def s3(self):
        return self.platform.s3.client()

    @cached_property
    def catalog(self) -> Catalog:
        return rest_catalog(self.platform.catalog, self.platform.s3)

    @cached_property
    def metadata(self) -> MetadataStore:
        return MetadataStore(self.platform.database.url.get_secret_value())

    @cached_property
    def relay(self) -> OutboxRelay:
        """Started by the operator's start-up handler, stopped by its cleanup handler."""
        return OutboxRelay(
            EventOutbox(self.platform.database.url.get_secret_value()),
            KafkaEventPublisher(self.platform.kafka.client_config()),
            self.settings.outbox_poll_seconds,
        )

    @cached_property
    def lineage(self) -> LineageSettings:
        return LineageSettings()

    @cached_property
    def lineage_relay(self) -> OutboxRelay | None:
        """Sends the OpenLineage events of the runs; None when no lineage transport is configured."""
        if not self.lineage.enabled:
            return None
        return OutboxRelay(
            EventOutbox(self.platform.database.url.get_secret_value(), table=LINEAGE),
            LineagePublisher(self.lineage),
            self.settings.outbox_poll_seconds,
            depth=metrics.LINEAGE_OUTBOX_DEPTH,
            name="lineage-relay",
        )

    def _catalog_facts(self) -> CatalogFacts:
        catalog = self.platform.catalog
        return CatalogFacts(self.lineage.table_namespace or catalog.uri, catalog.name, catalog.uri, catalog.warehouse)

    @cached_property
    def records(self) -> RunRecords:
        lineage = (
            LineageRecorder(self.lineage.job_namespace, self._catalog_facts, lambda: self.contracts)
            if self.lineage.enabled
            else None
        )
        return RunRecords(self.metadata, self.relay, self.settings.event_delivery_seconds, lineage)

    @cached_property
    def status(self) -> StatusWriter:
        return StatusWriter()

    @cached_property
    def cleanup(self) -> FinishedRunCleanup | None:
        """None when finished runs are kept (no TTL)."""
        ttl, namespace = self.settings.finished_run_ttl_seconds, self.settings.namespace
        if not ttl:
            return None
        api = client.CustomObjectsApi()
        return FinishedRunCleanup(
            lambda: self.status.list_runs(namespace),
            lambda name: api.delete_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, propagation_policy="Background", _request_timeout=10
            ),
            dt.timedelta(seconds=ttl),
        )

    @cached_property
    def maintenance(self) -> MaintenanceScheduler | None:
        """None when the operator does not maintain tables (LAKEHOUSE_MAINTENANCE_ENABLED=false)."""
        if not self.settings.maintenance_enabled:
            return None
        maintenance_log = MaintenanceLog(self.platform.database.url.get_secret_value())
        override = self.settings.maintenance_interval_seconds
        return MaintenanceScheduler(
            lambda: self.contracts,
            lambda contract, interval: maintain(
                self.catalog, self.s3, maintenance_log, contract, "schedule", due_after=interval
            ),
            self.settings.maintenance_check_seconds,
            dt.timedelta(seconds=override) if override else None,
        )

    @cached_property
    def ingest_engines(self) -> dict[IngestEngineName, IngestEngine]:
        engines: dict[IngestEngineName, IngestEngine] = {
            IngestEngineName.BUILTIN: BuiltinIngestEngine(
                self.s3, self.settings.raw_bucket, self.settings.quarantine_bucket
            ),
        }
        nifi = NiFiSettings()
        if nifi.enabled:  # LAKEHOUSE_NIFI_API_URL and LAKEHOUSE_NIFI_LISTEN_URL set
            engines[IngestEngineName.NIFI] = NiFiIngestEngine(
                nifi, self.platform.s3, self.s3, self.settings.raw_bucket, self.settings.quarantine_bucket
            )
        return engines

    @cached_property
    def transform_engines(self) -> dict[TransformEngineName, TransformEngine]:
        engines: dict[TransformEngineName, TransformEngine] = {
            TransformEngineName.ARROW: ArrowTransformEngine(
                self.s3, lambda: self.catalog, self.settings.group_commit_max_runs
            )
        }
        spark = SparkSettings()
        if spark.enabled:  # LAKEHOUSE_SPARK_ENABLED: once registered, large files go to Spark
            engines[TransformEngineName.SPARK] = (
                SparkSubmitEngine(spark, catalog=lambda: self.catalog)
                if spark.mode == "local"
                else SparkApplicationEngine(spark, self.platform, lambda: self.catalog)
            )
        return engines
