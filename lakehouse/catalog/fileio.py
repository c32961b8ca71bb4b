"""PyIceberg's PyArrow FileIO, its S3 streams opened late (`py-io-impl`, set by connect.catalog_properties).

Arrow's S3 output stream starts a multipart upload when it is opened, so every file PyIceberg writes (a data file,
a manifest, a manifest list) cost three requests however small: create, one part, complete. Opened late
(`allow_delayed_open`), a file smaller than a part goes up in one PUT when it is closed; a larger one still
streams in parts, and a failed upload raises when the file is closed instead of when it is opened (an OSError
either way: the transform stage retries it). A 1,000-row orders run writes 13 data files (one a month), a manifest
and a manifest list: its append took about 145 ms instead of 200 (measured once on the local stack, not kept in
bench/results; the end-to-end figures are in bench/results/end_to_end.json).
"""

from __future__ import annotations

from pyarrow.fs import FileSystem, S3FileSystem
from pyiceberg.io import S3_RETRY_STRATEGY_IMPL
from pyiceberg.io.pyarrow import PyArrowFileIO


class LakehouseFileIO(PyArrowFileIO):
    def _initialize_s3_fs(self, netloc: str | None) -> FileSystem:
        configured = super()._initialize_s3_fs(netloc)
        if not isinstance(configured, S3FileSystem) or S3_RETRY_STRATEGY_IMPL in self.properties:
            return configured  # a retry strategy is the one option the file system's state leaves out
        # The same file system, every other option PyIceberg set from the properties kept, but opened late
        # (when this pyarrow has the option: 21 and later).
        rebuild, (options,) = configured.__reduce__()
        if "allow_delayed_open" not in options:
            return configured
        return rebuild(options | {"allow_delayed_open": True})
