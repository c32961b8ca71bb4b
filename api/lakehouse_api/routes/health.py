"""Liveness, readiness and metrics: open endpoints for the kubelet and Prometheus, no data in them."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from lakehouse.k8s.ingestionrun import GROUP, PLURAL, VERSION
from lakehouse_api.backends import Backends
from lakehouse_api.deps import BackendsDep
from lakehouse_api.problems import PROBLEM_JSON
from lakehouse_api.schemas.health import CheckPublic, HealthPublic, ReadinessPublic

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthPublic, summary="The process is alive")
def healthz() -> HealthPublic:
    return HealthPublic()


def _s3(backends: Backends) -> str:
    backends.s3.head_bucket(Bucket=backends.settings.uploads_bucket)
    return f"bucket {backends.settings.uploads_bucket} reachable"


def _kubernetes(backends: Backends) -> str:
    # Listing one run proves the API server, the CRD and our RBAC in one call.
    backends.custom_objects.list_namespaced_custom_object(
        GROUP, VERSION, backends.settings.namespace, PLURAL, limit=1, _request_timeout=backends.kube_timeout
    )
    return f"IngestionRuns in namespace {backends.settings.namespace} readable"


def _catalog(backends: Backends) -> str:
    backends.catalog_config()
    return "catalog config readable"


CHECKS: dict[str, Callable[[Backends], str]] = {"s3": _s3, "kubernetes": _kubernetes, "catalog": _catalog}
# What an upload needs. The catalog serves only the table reads (503 while it is down), so a catalog outage
# is reported but takes no API pod out of its Service: uploads go on.
REQUIRED = ("s3", "kubernetes")


def _run_check(check: Callable[[Backends], str], backends: Backends) -> CheckPublic:
    started = time.perf_counter()
    try:
        detail, ok = check(backends), True
    except Exception as error:  # any failure means "not ready"; the type is enough to act on
        detail, ok = f"{type(error).__name__}: {str(error)[:200]}", False
    return CheckPublic(ok=ok, detail=detail, seconds=round(time.perf_counter() - started, 3))


@router.get(
    "/readyz",
    response_model=ReadinessPublic,
    responses={503: {"description": "A dependency is down", "content": {PROBLEM_JSON: {}}}},
    summary="S3 and the Kubernetes API answer (the catalog is reported, not required)",
)
def readyz(backends: BackendsDep) -> Response:
    with ThreadPoolExecutor(len(CHECKS)) as pool:  # in parallel: readiness is bounded by the slowest check
        futures = {name: pool.submit(_run_check, check, backends) for name, check in CHECKS.items()}
        checks = {name: future.result() for name, future in futures.items()}
    ready = all(checks[name].ok for name in REQUIRED)
    body = ReadinessPublic(ready=ready, checks=checks).model_dump(mode="json")
    if ready:
        return JSONResponse(body)
    failing = ", ".join(name for name in REQUIRED if not checks[name].ok)
    problem = {
        "type": "https://lakehouse.dev/problems/not-ready",
        "title": "Service Unavailable",
        "status": 503,
        "detail": f"not ready: {failing} failing",
        "instance": "/readyz",
        **body,
    }
    return JSONResponse(problem, status_code=503, media_type=PROBLEM_JSON)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
