"""Connecting to the Iceberg REST catalog (Lakekeeper in production, Apache's REST server locally)."""

from __future__ import annotations

from typing import Any

from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.io import PY_IO_IMPL
from requests.adapters import HTTPAdapter

from lakehouse.settings import CatalogSettings, S3Settings

# Named, not imported: connecting (the API's table listing) needs no pyarrow, which the FileIO's module imports.
FILE_IO = "lakehouse.catalog.fileio.LakehouseFileIO"


class _TimeoutAdapter(HTTPAdapter):
    """requests has no session-wide timeout, and PyIceberg's REST client sets none."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def send(self, request: Any, **kwargs: Any) -> Any:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().send(request, **kwargs)


def catalog_properties(catalog: CatalogSettings, s3: S3Settings) -> dict[str, str]:
    """PyIceberg's properties for the catalog: its endpoint and token, and the FileIO that reads and writes the
    tables' files (lakehouse.catalog.fileio)."""
    properties = {
        "type": "rest",
        "uri": catalog.uri,
        "warehouse": catalog.warehouse,
        **s3.pyiceberg_properties(),
        PY_IO_IMPL: FILE_IO,
    }
    if catalog.token:
        properties["token"] = catalog.token.get_secret_value()
    return properties


def rest_catalog(catalog: CatalogSettings, s3: S3Settings, timeout: float | None = None) -> Catalog:
    """The catalog, every request to it bounded by `timeout` (default: ICEBERG_CATALOG_TIMEOUT_SECONDS), so a
    catalog that stopped answering fails a step, which is retried, instead of holding it forever. Connecting
    fetches the catalog's config (PyIceberg's own request, before the timeout is in place), so it raises while
    the catalog is down; callers connect again on their next attempt."""
    connected = load_catalog(catalog.name, **catalog_properties(catalog, s3))
    session = getattr(connected, "_session", None)  # PyIceberg's requests session for the REST calls
    if session is not None:
        adapter = _TimeoutAdapter(timeout or catalog.timeout_seconds)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
    return connected
