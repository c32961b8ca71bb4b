"""PyIceberg's PyArrow FileIO, its S3 streams opened late (`py-io-impl` in connect.rest_catalog).

Arrow's S3 output stream starts a multipart upload when it is opened, so every file PyIceberg writes (a data file,
a manifest, a manifest list) cost three requests however small: create, one part, complete. Opened late
(`allow_delayed_open`), a file smaller than a part goes up in one PUT when it is closed; a larger one still
streams in parts. A 1,000-row orders run writes 13 data files (one a month) and two manifests: its Iceberg append
went from about 200 to 145 ms (bench/results/end_to_end.json has the run's figures).
"""

from __future__ import annotations

from pyarrow.fs import FileSystem, S3FileSystem
from pyiceberg.io.pyarrow import PyArrowFileIO


class LakehouseFileIO(PyArrowFileIO):
    def _initialize_s3_fs(self, netloc: str | None) -> FileSystem:
        configured = super()._initialize_s3_fs(netloc)
        if not isinstance(configured, S3FileSystem):
            return configured
        # The same file system, every option PyIceberg set from the properties kept, but opened late.
        rebuild, (options,) = configured.__reduce__()
        return rebuild(options | {"allow_delayed_open": True})
