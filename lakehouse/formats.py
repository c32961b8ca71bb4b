"""The file formats an upload may have: the one list the API, the CRD, the readers and the CLI use."""

from __future__ import annotations

from enum import StrEnum


class SourceFormat(StrEnum):
    CSV = "csv"
    JSON = "json"  # newline-delimited JSON objects
    PARQUET = "parquet"
