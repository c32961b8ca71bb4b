"""Connecting to the Iceberg REST catalog (Lakekeeper in production, Apache's REST server locally)."""

from __future__ import annotations

from pyiceberg.catalog import Catalog, load_catalog

from lakehouse.settings import CatalogSettings, S3Settings


def rest_catalog(catalog: CatalogSettings, s3: S3Settings) -> Catalog:
    properties = {
        "type": "rest",
        "uri": catalog.uri,
        "warehouse": catalog.warehouse,
        **s3.pyiceberg_properties(),
    }
    if catalog.token:
        properties["token"] = catalog.token.get_secret_value()
    return load_catalog(catalog.name, **properties)
