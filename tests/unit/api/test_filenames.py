from __future__ import annotations

import pytest
from lakehouse_api.uploads.filenames import MAX_FILENAME_LENGTH, safe_filename


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("orders.csv", "orders.csv"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system.ini", "system.ini"),
        ("C:\\Users\\me\\orders 2025.csv", "orders_2025.csv"),
        ("café-März.csv", "cafe-Marz.csv"),
        ("bad\x00name\x1b[31m.csv", "bad_name_31m.csv"),
        ("new\r\nline.csv", "new_line.csv"),
        (".hidden.csv", "hidden.csv"),
        ("..", "upload"),
        ("", "upload"),
        (None, "upload"),
        ("日本語.csv", "csv"),
        ("a/b/", "upload"),
    ],
)
def test_names_become_one_safe_segment(name: str | None, expected: str) -> None:
    assert safe_filename(name) == expected


def test_long_names_are_cut_keeping_the_extension() -> None:
    cut = safe_filename("x" * 300 + ".parquet")

    assert len(cut) == MAX_FILENAME_LENGTH and cut.endswith(".parquet")


def test_a_long_fake_extension_is_not_kept() -> None:
    cut = safe_filename("name." + "y" * 300)

    assert len(cut) <= MAX_FILENAME_LENGTH and cut.startswith("name.")
