"""IngestionRun access for the Airflow DAG: create or adopt a run, read its phase. Kubernetes client only.

Kept free of Airflow imports so it is easy to test; the DAG (lakehouse_ingest.py) adds the scheduling.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from lakehouse.k8s.ingestionrun import GROUP, PLURAL, VERSION
from lakehouse.k8s.ingestionrun.conditions import ConditionType
from lakehouse.k8s.ingestionrun.phase import Phase
from lakehouse.k8s.ingestionrun.spec import IngestionRunSpec, ingestion_run
from lakehouse.k8s.objects import get_custom_object


class RunFailedError(RuntimeError):
    """The run ended Failed; the message carries its reason."""


@dataclass(frozen=True)
class RunRequest:
    namespace: str
    upload_id: str
    dataset: str | None = None
    source_uri: str | None = None
    source_format: str | None = None
    ingest_engine: str | None = None
    transform_engine: str | None = None

    def run_body(self) -> dict[str, Any]:
        """The IngestionRun to create when none exists for this upload yet."""
        missing = [name for name in ("dataset", "source_uri", "source_format") if not getattr(self, name)]
        if missing:
            raise ValueError(
                f"no IngestionRun {self.namespace}/{self.upload_id} to adopt, and {', '.join(missing)} "
                "not given to create one"
            )
        engines = {k: v for k, v in (("ingest", self.ingest_engine), ("transform", self.transform_engine)) if v}
        try:
            spec = IngestionRunSpec.model_validate(
                {
                    "uploadId": self.upload_id,
                    "dataset": self.dataset,
                    "source": {"uri": self.source_uri, "format": self.source_format},
                    "engines": engines or None,
                }
            )
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}" for e in error.errors(include_url=False)
            )
            raise ValueError(f"cannot create IngestionRun {self.namespace}/{self.upload_id}: {problems}") from error
        return ingestion_run(spec, labels={"app.kubernetes.io/created-by": "airflow"})


def custom_objects() -> client.CustomObjectsApi:
    """In a pod: the service account; elsewhere: KUBECONFIG (or ~/.kube/config)."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
    return client.CustomObjectsApi()


def create_or_adopt(api: client.CustomObjectsApi, request: RunRequest) -> tuple[str, bool]:
    """(run name, adopted). A run that already exists for the upload (the API made it, or an earlier
    try of this task did) is adopted when it matches; a retry never creates a second run."""
    existing = _get(api, request.namespace, request.upload_id)
    if existing is None:
        try:
            api.create_namespaced_custom_object(GROUP, VERSION, request.namespace, PLURAL, request.run_body())
            return request.upload_id, False
        except ApiException as error:
            if error.status != 409:
                raise
            existing = _get(api, request.namespace, request.upload_id)
            assert existing is not None
    spec = existing["spec"]
    for field, wanted, actual in (
        ("dataset", request.dataset, spec.get("dataset")),
        ("source_uri", request.source_uri, spec.get("source", {}).get("uri")),
    ):
        if wanted and wanted != actual:
            raise ValueError(f"IngestionRun {request.upload_id} exists with {field} {actual!r}, not {wanted!r}")
    return request.upload_id, True


def run_status(api: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any]:
    """The run's status; raises RunFailedError when it failed."""
    run = _get(api, namespace, name)
    if run is None:
        raise RunFailedError(f"IngestionRun {namespace}/{name} was deleted")
    status = run.get("status") or {}
    if status.get("phase") == Phase.FAILED:
        ready = next((c for c in status.get("conditions", []) if c.get("type") == ConditionType.READY), {})
        raise RunFailedError(f"IngestionRun {namespace}/{name} failed ({ready.get('reason')}): {status.get('message')}")
    return status


def _get(api: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any] | None:
    return get_custom_object(api, GROUP, VERSION, PLURAL, namespace, name)
