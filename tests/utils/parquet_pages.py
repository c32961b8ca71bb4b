"""What a Parquet column chunk's metadata says about its dictionary."""

from __future__ import annotations

import pyarrow.parquet as pq


def dictionary_page_bytes(column: pq.ColumnChunkMetaData) -> int:
    """The bytes of the chunk's dictionary page as stored (it comes first, before the data pages); 0 without one."""
    if not column.has_dictionary_page or column.dictionary_page_offset is None:
        return 0
    return column.data_page_offset - column.dictionary_page_offset
