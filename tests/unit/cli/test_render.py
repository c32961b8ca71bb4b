from __future__ import annotations

from lakehouse_cli import render
from lakehouse_cli.multipart import MultipartUpload
from lakehouse_cli.progress import human_bytes


def test_tables_align_columns() -> None:
    text = render.table(["name", "rows"], [("bronze.orders", 12), ("b", None)])

    assert text.splitlines() == ["NAME           ROWS", "bronze.orders  12", "b"]


def test_failure_reason_comes_from_the_failed_condition() -> None:
    upload = {"conditions": [{"type": "Failed", "reason": "MissingColumns", "message": "add order_date"}]}

    assert render.failure_reason(upload) == "MissingColumns: add order_date"
    assert render.failure_reason({"message": "stuck"}) == "stuck"


def test_multipart_length_is_exact_before_sending() -> None:
    upload = MultipartUpload(fields={"dataset": "orders"}, filename="o.csv", file_size=5)

    assert upload.content_length == len(b"".join(upload.body([b"12", b"345"])))


def test_human_bytes() -> None:
    assert [human_bytes(n) for n in (12, 2048, 5 * 1024**3)] == ["12 B", "2.0 KiB", "5.0 GiB"]
