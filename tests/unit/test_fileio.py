"""The catalog's FileIO: PyIceberg's own, its S3 streams opened late (one PUT for a small file)."""

from __future__ import annotations

from pyarrow.fs import S3FileSystem
from pyiceberg.io import load_file_io

from lakehouse.catalog.connect import catalog_properties
from lakehouse.catalog.fileio import LakehouseFileIO
from lakehouse.settings import CatalogSettings, S3Settings

S3 = S3Settings(S3_ENDPOINT_URL="http://127.0.0.1:9", AWS_ACCESS_KEY_ID="key", AWS_SECRET_ACCESS_KEY="secret")


def test_s3_streams_open_late_with_every_other_option_kept() -> None:
    catalog = CatalogSettings(ICEBERG_CATALOG_URI="http://127.0.0.1:9", ICEBERG_WAREHOUSE="s3://warehouse")
    io = load_file_io(catalog_properties(catalog, S3))
    assert isinstance(io, LakehouseFileIO)
    file_system = io.fs_by_scheme("s3", "warehouse")
    assert isinstance(file_system, S3FileSystem)
    options = file_system.__reduce__()[1][0]
    assert options["allow_delayed_open"] is True
    assert (options["endpoint_override"], options["access_key"], options["region"]) == (
        "http://127.0.0.1:9",
        "key",
        S3.region,
    )
