"""The FastAPI application: one router per resource, problem+json errors, request metrics."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from lakehouse.contracts.cluster import ClusterContracts, datasets_lister
from lakehouse.contracts.registry import ContractRegistry
from lakehouse.logs import log_json
from lakehouse.memory import return_large_blocks_to_the_system
from lakehouse_api.auth import ApiKeys
from lakehouse_api.backends import Backends
from lakehouse_api.metrics import RequestMetrics
from lakehouse_api.problems import install_problem_handlers
from lakehouse_api.rate_limit import TokenBuckets
from lakehouse_api.routes import datasets, health, tables, uploads
from lakehouse_api.schemas.uploads import UploadAccepted
from lakehouse_api.settings import ApiSettings
from lakehouse_api.uploads.sweeper import sweep_periodically


def create_app(settings: ApiSettings | None = None, contracts: ContractRegistry | None = None) -> FastAPI:
    settings = settings or ApiSettings()
    return_large_blocks_to_the_system()  # uploads stream through in 8 MiB parts
    app = FastAPI(
        title="Lakehouse Datasource API",
        version="1.0.0",
        summary="Upload files for ingestion into bronze Iceberg tables and follow their runs.",
        lifespan=_background_work,
    )
    app.state.settings = settings
    app.state.api_keys = ApiKeys.from_settings(settings)
    app.state.rate_limit = (
        TokenBuckets(settings.rate_limit_per_minute, settings.rate_limit_burst)
        if settings.rate_limit_per_minute
        else None
    )
    app.state.backends = Backends(settings)
    app.state.contracts = contracts or _cluster_contracts(app.state.backends, settings)

    for resource in (uploads, datasets, tables):
        app.include_router(resource.router)
    # The first clients posted to /api/upload; the same endpoint answers there.
    app.add_api_route(
        "/api/upload",
        uploads.create_upload,
        methods=["POST"],
        status_code=202,
        response_model=UploadAccepted,
        responses=uploads.UPLOAD_ERRORS,
        openapi_extra=uploads.UPLOAD_OPENAPI,
        tags=["uploads"],
        summary="Alias of POST /api/v1/uploads",
    )
    app.include_router(health.router)
    install_problem_handlers(app)
    app.add_middleware(RequestMetrics)
    _log_to_stderr()
    log_json(["lakehouse_api", "uvicorn.error", "uvicorn.access"])
    return app


def _cluster_contracts(backends: Backends, settings: ApiSettings) -> ClusterContracts:
    """The namespace's Datasets over the contract files; the cluster is reached on the first request only."""
    timeout = settings.backend_timeout_seconds
    return ClusterContracts(
        datasets_lister(lambda: backends.custom_objects, settings.namespace, timeout), ContractRegistry.default()
    )


@contextlib.asynccontextmanager
async def _background_work(app: FastAPI) -> AsyncIterator[None]:
    settings: ApiSettings = app.state.settings
    sweeper = None
    if settings.upload_sweep_interval_seconds > 0:
        sweeper = asyncio.create_task(
            sweep_periodically(
                app.state.backends.s3,
                settings.uploads_bucket,
                dt.timedelta(seconds=settings.upload_sweep_age_seconds),
                settings.upload_sweep_interval_seconds,
            )
        )
    yield
    if sweeper is not None:
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper


def _log_to_stderr() -> None:
    # uvicorn configures only its own loggers; ours would otherwise print warnings and worse only.
    logger = logging.getLogger("lakehouse_api")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
