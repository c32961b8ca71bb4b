"""Iceberg REST catalog of the local stack: a partitioned table written, read, time-travelled, purged.

PyIceberg talks to the catalog at ICEBERG_CATALOG_URI and writes the Parquet files itself to the
SeaweedFS S3 (S3_ENDPOINT_URL, path-style); the server keeps the table pointers in PostgreSQL and
writes the metadata files. Everything happens in a namespace of the test's own, dropped at the end.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import boto3
import pyarrow as pa
import pytest
from botocore.config import Config
from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.transforms import IdentityTransform
from pyiceberg.types import DateType, DoubleType, LongType, NestedField, StringType

from tests.utils.stack import stack_env

pytestmark = pytest.mark.integration

ENV = (
    "ICEBERG_CATALOG_URI",
    "ICEBERG_WAREHOUSE",
    "S3_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
)

SCHEMA = Schema(
    NestedField(field_id=1, name="id", field_type=LongType(), required=True),
    NestedField(field_id=2, name="country", field_type=StringType(), required=False),
    NestedField(field_id=3, name="amount", field_type=DoubleType(), required=False),
    NestedField(field_id=4, name="event_date", field_type=DateType(), required=False),
)
SPEC = PartitionSpec(PartitionField(source_id=2, field_id=1000, transform=IdentityTransform(), name="country"))

FIRST_BATCH = [
    {"id": 1, "country": "DE", "amount": 10.5, "event_date": dt.date(2024, 1, 1)},
    {"id": 2, "country": "FR", "amount": 20.25, "event_date": dt.date(2024, 1, 2)},
    {"id": 3, "country": "DE", "amount": None, "event_date": dt.date(2024, 1, 3)},
]
SECOND_BATCH = [
    {"id": 4, "country": "NL", "amount": 7.0, "event_date": dt.date(2024, 2, 1)},
    {"id": 5, "country": "FR", "amount": 1.5, "event_date": None},
]


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    return stack_env(*ENV)


@pytest.fixture(scope="module")
def catalog(env: dict[str, str]) -> Catalog:
    return load_catalog(
        "lakehouse",
        type="rest",
        uri=env["ICEBERG_CATALOG_URI"],
        warehouse=env["ICEBERG_WAREHOUSE"],
        **{
            "s3.endpoint": env["S3_ENDPOINT_URL"],
            "s3.access-key-id": env["AWS_ACCESS_KEY_ID"],
            "s3.secret-access-key": env["AWS_SECRET_ACCESS_KEY"],
            "s3.region": env["AWS_REGION"],
            "s3.path-style-access": "true",
        },
    )


@pytest.fixture(scope="module")
def s3_client(env: dict[str, str]) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=env["S3_ENDPOINT_URL"],
        region_name=env["AWS_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2, "mode": "standard"}),
    )


@pytest.fixture
def namespace(catalog: Catalog, s3_client: Any) -> Iterator[str]:
    """A fresh namespace; its tables (with their files) and the namespace are dropped afterwards."""
    name = f"test_catalog_{uuid.uuid4().hex[:10]}"
    catalog.create_namespace(name, properties={"owner": "tests/integration/test_iceberg_catalog.py"})
    yield name
    for identifier in catalog.list_tables(name):
        location = catalog.load_table(identifier).location()
        catalog.purge_table(identifier)
        delete_prefix(s3_client, location)
    catalog.drop_namespace(name)
    assert (name,) not in catalog.list_namespaces()


def split_location(location: str) -> tuple[str, str]:
    parsed = urlparse(location)
    assert parsed.scheme in {"s3", "s3a"}, location
    return parsed.netloc, parsed.path.lstrip("/").rstrip("/") + "/"


def list_keys(s3_client: Any, location: str) -> set[str]:
    bucket, prefix = split_location(location)
    keys: set[str] = set()
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.update(f"s3://{bucket}/{obj['Key']}" for obj in page.get("Contents", []))
    return keys


def delete_prefix(s3_client: Any, location: str) -> None:
    bucket, _ = split_location(location)
    for key in list_keys(s3_client, location):
        s3_client.delete_object(Bucket=bucket, Key=key.removeprefix(f"s3://{bucket}/"))


def rows(table: pa.Table) -> list[dict[str, Any]]:
    return sorted(table.to_pylist(), key=lambda row: row["id"])


def arrow(batch: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(batch, schema=SCHEMA.as_arrow())


def data_files(table: Table, snapshot_id: int | None = None) -> set[str]:
    return {task.file.file_path for task in table.scan(snapshot_id=snapshot_id).plan_files()}


def test_partitioned_table_append_read_time_travel_and_purge(
    catalog: Catalog, namespace: str, s3_client: Any, env: dict[str, str]
) -> None:
    identifier = f"{namespace}.events"
    table = catalog.create_table(identifier, schema=SCHEMA, partition_spec=SPEC)
    warehouse_bucket, _ = split_location(env["ICEBERG_WAREHOUSE"])
    assert table.location().startswith(f"s3://{warehouse_bucket}/")
    assert table.spec().fields[0].name == "country"

    table.append(arrow(FIRST_BATCH))
    first_snapshot = table.current_snapshot()
    assert first_snapshot is not None
    assert rows(table.scan().to_arrow()) == rows(arrow(FIRST_BATCH))

    table.append(arrow(SECOND_BATCH))

    # A fresh load goes through the REST server and its PostgreSQL-backed pointer.
    reloaded = catalog.load_table(identifier)
    assert len(reloaded.snapshots()) == 2
    assert reloaded.snapshots()[0].snapshot_id == first_snapshot.snapshot_id
    assert rows(reloaded.scan().to_arrow()) == rows(arrow(FIRST_BATCH + SECOND_BATCH))
    assert rows(reloaded.scan(snapshot_id=first_snapshot.snapshot_id).to_arrow()) == rows(arrow(FIRST_BATCH))
    filtered = reloaded.scan(row_filter="country = 'FR'").to_arrow()
    assert [row["id"] for row in rows(filtered)] == [2, 5]

    # The files are really in the bucket: one Parquet file per partition and append, plus metadata.
    files_now = data_files(reloaded)
    files_first = data_files(reloaded, first_snapshot.snapshot_id)
    assert len(files_first) == 2  # DE, FR
    assert len(files_now) == 4  # + NL, FR
    assert files_first < files_now
    keys = list_keys(s3_client, reloaded.location())
    assert files_now <= keys, f"data files missing in S3: {files_now - keys}"
    assert all(path.endswith(".parquet") for path in files_now)
    assert reloaded.metadata_location in keys
    assert any(key.endswith(".avro") for key in keys)  # manifests and manifest lists

    catalog.purge_table(identifier)
    assert not catalog.table_exists(identifier)
    assert not (files_now & list_keys(s3_client, reloaded.location())), "purge left data files behind"
