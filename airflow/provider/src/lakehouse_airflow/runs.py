"""IngestionRuns for DAGs: create one, or adopt the one that exists. Kubernetes client and lakehouse.k8s only.

LakehouseHook calls these; tests/unit/test_airflow_provider.py tests them without Airflow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from lakehouse.k8s.ingestionrun import GROUP, PLURAL, VERSION
from lakehouse.k8s.ingestionrun.spec import IngestionRunSpec, ingestion_run

if TYPE_CHECKING:  # the client is imported when a run is read, not when a DAG file is parsed
    from kubernetes import client

CREATED_BY_LABEL = {"app.kubernetes.io/created-by": "airflow"}


@dataclass(frozen=True)
class RunRequest:
    namespace: str
    upload_id: str
    dataset: str | None = None
    source_uri: str | None = None
    source_format: str | None = None
    ingest_engine: str | None = None
    transform_engine: str | None = None
    annotations: dict[str, str] = field(default_factory=dict)

    def run_body(self) -> dict[str, Any]:
        """The IngestionRun to create when none exists for this upload yet; ValueError when the request
        cannot make one (a conf error: retrying cannot help)."""
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
        body = ingestion_run(spec, labels=CREATED_BY_LABEL)
        if self.annotations:
            body["metadata"]["annotations"] = dict(self.annotations)
        return body


def create_or_adopt(api: client.CustomObjectsApi, request: RunRequest) -> tuple[str, bool]:
    """(run name, adopted). A run that already exists for the upload (the API made it, or an earlier
    try of this task did) is adopted when it matches; a retry never creates a second run."""
    from kubernetes.client.exceptions import ApiException

    existing = get_run(api, request.namespace, request.upload_id)
    if existing is None:
        try:
            api.create_namespaced_custom_object(GROUP, VERSION, request.namespace, PLURAL, request.run_body())
            return request.upload_id, False
        except ApiException as error:
            if error.status != 409:
                raise
            existing = get_run(api, request.namespace, request.upload_id)
            assert existing is not None
    spec = existing["spec"]
    for name, wanted, actual in (
        ("dataset", request.dataset, spec.get("dataset")),
        ("source_uri", request.source_uri, spec.get("source", {}).get("uri")),
    ):
        if wanted and wanted != actual:
            raise ValueError(f"IngestionRun {request.upload_id} exists with {name} {actual!r}, not {wanted!r}")
    return request.upload_id, True


def get_run(api: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any] | None:
    from lakehouse.k8s.objects import get_custom_object

    return get_custom_object(api, GROUP, VERSION, PLURAL, namespace, name)
