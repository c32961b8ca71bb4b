"""Clients of the servers the API talks to, created on first use.

Lazy, so the API starts (and serves what it still can) while one of them is down, and
built with short timeouts, so a dead dependency turns into a quick 503 instead of a hang.
PyIceberg (and with it pyarrow) is imported only by the table reads that need it: an API that only
takes uploads never loads it (issue #13: import only what a request needs).
"""

from __future__ import annotations

import threading
from functools import cached_property
from typing import TYPE_CHECKING, Any

import requests
from kubernetes import client as kube
from kubernetes import config as kube_config

from lakehouse.settings import CatalogSettings, DatabaseSettings, S3Settings
from lakehouse_api.settings import ApiSettings

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog


class Backends:
    def __init__(self, settings: ApiSettings) -> None:
        self.settings = settings
        self._catalog: Catalog | None = None
        self._catalog_lock = threading.Lock()

    @cached_property
    def s3(self) -> Any:  # botocore S3 client (its type is generated at run time)
        timeout = self.settings.backend_timeout_seconds
        return S3Settings().client(
            # Two attempts: a blip is retried, an outage is reported to the client quickly.
            max_attempts=2,
            connect_timeout=timeout,
            read_timeout=max(timeout, 60.0),  # a large part upload takes a while
            max_pool_connections=20,
        )

    @cached_property
    def database_url(self) -> str:
        """The platform's metadata database (only the table lineage reads it)."""
        return DatabaseSettings().url.get_secret_value()

    @cached_property
    def kube(self) -> kube.ApiClient:
        configuration = kube.Configuration()
        try:
            kube_config.load_incluster_config(client_configuration=configuration)
        except kube_config.ConfigException:
            kube_config.load_kube_config(client_configuration=configuration)
        configuration.retries = 1
        return kube.ApiClient(configuration)

    @property
    def custom_objects(self) -> kube.CustomObjectsApi:
        return kube.CustomObjectsApi(self.kube)

    @property
    def core(self) -> kube.CoreV1Api:
        return kube.CoreV1Api(self.kube)

    @property
    def kube_timeout(self) -> tuple[float, float]:
        return (self.settings.backend_timeout_seconds, self.settings.backend_timeout_seconds * 2)

    def catalog_config(self) -> dict[str, Any]:
        """The catalog's config (GET /v1/config, the first request of any Iceberg REST client): the catalog answers
        and takes our token. Plain HTTP, so the readiness probe, asking every few seconds, loads no PyIceberg."""
        catalog = CatalogSettings()
        headers = {"Authorization": f"Bearer {catalog.token.get_secret_value()}"} if catalog.token else {}
        response = requests.get(
            f"{catalog.uri.rstrip('/')}/v1/config",
            params={"warehouse": catalog.warehouse},
            headers=headers,
            timeout=self.settings.backend_timeout_seconds,
        )
        response.raise_for_status()
        return response.json()

    def catalog(self) -> Catalog:
        """The Iceberg REST catalog; connecting fetches its config, so it is cached only once that worked."""
        from lakehouse.catalog.connect import rest_catalog

        with self._catalog_lock:
            if self._catalog is None:
                timeout = self.settings.backend_timeout_seconds * 2
                self._catalog = rest_catalog(CatalogSettings(), S3Settings(), timeout=timeout)
            return self._catalog
