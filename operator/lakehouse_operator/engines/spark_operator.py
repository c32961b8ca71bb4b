"""The Spark engine for a cluster: one SparkApplication per run, run by the Spark Operator.

Each call creates the run's application if missing and reads its state once: not finished ->
StillRunning, so no handler thread waits on a cluster job. The outcome is read back from the
table's snapshots, where the job records the run id.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from pyiceberg.catalog import Catalog

from lakehouse.catalog.spark import iceberg_spark_conf
from lakehouse.k8s.ingestionrun.reasons import FailureReason
from lakehouse.k8s.objects import get_custom_object
from lakehouse.settings import PlatformSettings
from lakehouse_operator.engines.base import RunContext, RunRejectedError, StillRunning, TransformOutcome
from lakehouse_operator.engines.spark import SparkSettings, SparkTransformEngine, committed_outcome
from lakehouse_operator.engines.spark_application import (
    CONTRACTS_MOUNT,
    GROUP,
    PLURAL,
    VERSION,
    PodResources,
    SecretRef,
    SparkApplicationParams,
    application_name,
    render_spark_application,
)

FAILED_STATES = {"FAILED", "SUBMISSION_FAILED"}


class SparkApplicationEngine(SparkTransformEngine):
    def __init__(
        self,
        settings: SparkSettings,
        platform: PlatformSettings,
        catalog: Callable[[], Catalog],
        custom_objects: Callable[[], client.CustomObjectsApi] = client.CustomObjectsApi,
    ) -> None:
        super().__init__(settings)
        self._platform = platform
        self._catalog = catalog
        self._custom_objects = custom_objects

    def application(self, run: RunContext, raw_uri: str) -> dict[str, Any]:
        s = self._settings
        contracts_dir = CONTRACTS_MOUNT if s.contracts_configmap else None
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

    def transform(self, run: RunContext, raw_uri: str) -> TransformOutcome | StillRunning:
        api = self._custom_objects()
        name = application_name(run.name)
        app = _get(api, run.namespace, name)
        if app is None:
            try:
                api.create_namespaced_custom_object(
                    GROUP, VERSION, run.namespace, PLURAL, self.application(run, raw_uri)
                )
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
            return committed_outcome(self._catalog(), run)
        if phase in FAILED_STATES:
            detail = state.get("errorMessage") or "no error message; see the driver pod's log"
            raise RunRejectedError(
                FailureReason.SPARK_APPLICATION_FAILED, f"SparkApplication {run.namespace}/{name} {phase}: {detail}"
            )
        age = _age_seconds(app)
        if age > self._settings.timeout_seconds:
            _delete(api, run.namespace, name)  # stops its pods; a new run starts afresh
            raise RunRejectedError(
                FailureReason.SPARK_TIMED_OUT,
                f"SparkApplication {run.namespace}/{name} did not finish in {self._settings.timeout_seconds:.0f}s "
                f"(last state {phase or 'NEW'}); it was deleted",
            )
        return StillRunning(
            f"SparkApplication {name} is {phase or 'NEW'} ({age:.0f}s)", delay=self._settings.poll_seconds
        )


def _get(api: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any] | None:
    return get_custom_object(api, GROUP, VERSION, PLURAL, namespace, name)


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
