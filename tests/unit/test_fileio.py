"""The catalog's FileIO: PyIceberg's own, its S3 streams opened late (one PUT for a small file)."""

from __future__ import annotations

from typing import Any

from pyarrow.fs import S3FileSystem
from pyiceberg.io import load_file_io

from lakehouse.catalog.connect import catalog_properties
from lakehouse.catalog.fileio import LakehouseFileIO
from lakehouse.settings import CatalogSettings, S3Settings

S3 = S3Settings(S3_ENDPOINT_URL="http://127.0.0.1:9", AWS_ACCESS_KEY_ID="key", AWS_SECRET_ACCESS_KEY="secret")
CATALOG = CatalogSettings(ICEBERG_CATALOG_URI="http://127.0.0.1:9", ICEBERG_WAREHOUSE="s3://warehouse")


def _options(file_system: S3FileSystem) -> dict[str, Any]:
    return file_system.__reduce__()[1][0]


def test_s3_streams_open_late_with_every_other_option_kept() -> None:
    io = load_file_io(catalog_properties(CATALOG, S3))
    assert isinstance(io, LakehouseFileIO)
    file_system = io.fs_by_scheme("s3", "warehouse")
    assert isinstance(file_system, S3FileSystem)
    options = _options(file_system)
    assert options["allow_delayed_open"] is True
    assert (options["endpoint_override"], options["access_key"], options["region"]) == (
        "http://127.0.0.1:9",
        "key",
        S3.region,
    )


def test_a_retry_strategy_keeps_pyicebergs_own_file_system() -> None:
    """The file system's state leaves its retry strategy out: rebuilt, it would lose it."""
    strategy = {"s3.retry-strategy-impl": "pyarrow.fs.AwsDefaultS3RetryStrategy"}
    io = load_file_io(catalog_properties(CATALOG, S3) | strategy)
    assert _options(io.fs_by_scheme("s3", "warehouse"))["allow_delayed_open"] is False
