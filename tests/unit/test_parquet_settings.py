"""The platform's Parquet settings reach the files: a column of unique values gives up its dictionary early
(lakehouse.storage.s3.PARQUET_DICTIONARY_PAGE_BYTES) instead of hashing every value first."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lakehouse.storage.s3 import parquet_bytes
from tests.utils.parquet_pages import dictionary_page_bytes

ROWS = 100_000
WHOLE_DICTIONARY_BYTES = ROWS * 8  # of their unique ids


def test_a_column_of_unique_values_falls_back_to_plain_long_before_its_dictionary_holds_them_all() -> None:
    ids = np.random.default_rng(7).integers(0, 2**62, ROWS)  # unique random 62-bit ids: zstd hardly shrinks a page
    table = pa.table({"id": ids, "status": pa.array(["new", "paid", "sent"] * (ROWS // 3) + ["new"])})

    row_group = pq.ParquetFile(io.BytesIO(parquet_bytes(table))).metadata.row_group(0)

    assert dictionary_page_bytes(row_group.column(0)) < WHOLE_DICTIONARY_BYTES / 4
    assert 0 < dictionary_page_bytes(row_group.column(1)) < 100  # three values keep their dictionary
