from pathlib import Path

import pytest

from lakehouse.db.migrate import MigrationError, discover


def test_discovery_orders_by_version_and_ignores_other_files(tmp_path: Path) -> None:
    for name in ["010_later.sql", "002_second.sql", "001_first.sql", "notes.sql", "003_x.txt"]:
        (tmp_path / name).write_text("SELECT 1;")
    assert [m.version for m in discover(tmp_path)] == ["001_first", "002_second", "010_later"]


def test_empty_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match="no migrations"):
        discover(tmp_path)
