"""IngestionRuns and their Kubernetes events, read and created through the Kubernetes API.

Every call is blocking (the kubernetes client is synchronous): callers run these in threads.
"""

from __future__ import annotations

from typing import Any

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as TransportError

from lakehouse.k8s.ingestionrun import GROUP, PLURAL, VERSION
from lakehouse_api.backends import Backends
from lakehouse_api.problems import ProblemError

LIST_PAGE_SIZE = 500


class RunExistsError(Exception):
    pass


def kubernetes_problem(error: Exception, action: str) -> ProblemError:
    if isinstance(error, TransportError) or (isinstance(error, ApiException) and (error.status or 0) >= 500):
        return ProblemError(
            503, f"the Kubernetes API is unavailable ({action}); retry later", kind="backend-unavailable"
        )
    status = error.status if isinstance(error, ApiException) else None
    return ProblemError(500, f"the Kubernetes API refused to {action} (HTTP {status}); see the API log")


def create_run(backends: Backends, manifest: dict[str, Any]) -> dict[str, Any]:
    try:
        return backends.custom_objects.create_namespaced_custom_object(
            GROUP, VERSION, backends.settings.namespace, PLURAL, manifest, _request_timeout=backends.kube_timeout
        )
    except ApiException as error:
        if error.status == 409:
            raise RunExistsError(manifest["metadata"]["name"]) from error
        raise kubernetes_problem(error, "create the IngestionRun") from error
    except TransportError as error:
        raise kubernetes_problem(error, "create the IngestionRun") from error


def get_run(backends: Backends, name: str) -> dict[str, Any] | None:
    try:
        return backends.custom_objects.get_namespaced_custom_object(
            GROUP, VERSION, backends.settings.namespace, PLURAL, name, _request_timeout=backends.kube_timeout
        )
    except ApiException as error:
        if error.status == 404:
            return None
        raise kubernetes_problem(error, "read the IngestionRun") from error
    except TransportError as error:
        raise kubernetes_problem(error, "read the IngestionRun") from error


def list_runs(backends: Backends) -> list[dict[str, Any]]:
    """Every run of the namespace, newest first (Kubernetes lists by name, which says nothing about age)."""
    runs: list[dict[str, Any]] = []
    token: str | None = None
    try:
        while True:
            page = backends.custom_objects.list_namespaced_custom_object(
                GROUP,
                VERSION,
                backends.settings.namespace,
                PLURAL,
                limit=LIST_PAGE_SIZE,
                _continue=token,
                _request_timeout=backends.kube_timeout,
            )
            runs.extend(page.get("items", []))
            token = page.get("metadata", {}).get("continue")
            if not token:
                break
    except (ApiException, TransportError) as error:
        raise kubernetes_problem(error, "list IngestionRuns") from error
    runs.sort(key=lambda run: (run["metadata"].get("creationTimestamp", ""), run["metadata"]["name"]), reverse=True)
    return runs


def run_events(backends: Backends, name: str) -> list[Any]:
    """The run's Kubernetes events (the operator records each transition), oldest first."""
    try:
        events = backends.core.list_namespaced_event(
            backends.settings.namespace,
            field_selector=f"involvedObject.kind=IngestionRun,involvedObject.name={name}",
            _request_timeout=backends.kube_timeout,
        ).items
    except (ApiException, TransportError) as error:
        raise kubernetes_problem(error, "list the run's events") from error
    return sorted(events, key=lambda e: e.last_timestamp or e.event_time or e.metadata.creation_timestamp)
