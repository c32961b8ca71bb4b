from __future__ import annotations

import datetime as dt
import re

from lakehouse_api.uploads.stored_upload import (
    IDEMPOTENCY_LABEL,
    StoredUpload,
    idempotency_key_hash,
    idempotent_upload_id,
    new_upload_id,
    run_for,
)

from lakehouse.storage.layout import upload_location
from lakehouse.storage.s3 import S3Location

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def test_upload_ids_are_dns_labels_and_idempotent_ones_are_stable() -> None:
    assert DNS_LABEL.match(new_upload_id()) and new_upload_id() != new_upload_id()
    key_hash = idempotency_key_hash("caller-a", "retry-1")
    assert idempotent_upload_id(key_hash) == idempotent_upload_id(idempotency_key_hash("caller-a", "retry-1"))
    assert DNS_LABEL.match(idempotent_upload_id(key_hash)) and len(idempotent_upload_id(key_hash)) <= 63
    # Scoped by caller: the same Idempotency-Key from another client is another upload.
    assert key_hash != idempotency_key_hash("caller-b", "retry-1")


def test_object_key_layout() -> None:
    location = upload_location("uploads", "orders", "up-1", "o.csv", dt.date(2025, 3, 4))

    assert location.uri == "s3://uploads/orders/2025-03-04/up-1/o.csv"


def test_the_run_carries_the_measured_file_and_labels() -> None:
    upload = StoredUpload(
        upload_id="up-abc",
        dataset="orders",
        location=S3Location("uploads", "orders/2025-03-04/up-abc/o.csv"),
        format="csv",
        size=10,
        sha256="0" * 64,
        filename="o.csv",
        engines={"ingest": "builtin"},
        idempotency_key_hash="f" * 64,
    )

    run = run_for(upload)

    assert run["metadata"]["name"] == "up-abc"
    assert run["metadata"]["labels"][IDEMPOTENCY_LABEL] == "f" * 63
    assert run["metadata"]["labels"]["lakehouse.dev/dataset"] == "orders"
    assert run["spec"] == {
        "uploadId": "up-abc",
        "dataset": "orders",
        "source": {
            "uri": "s3://uploads/orders/2025-03-04/up-abc/o.csv",
            "format": "csv",
            "sizeBytes": 10,
            "sha256": "0" * 64,
            "filename": "o.csv",
        },
        "engines": {"ingest": "builtin"},
    }
