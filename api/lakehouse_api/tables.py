"""Bronze tables read through the Iceberg REST catalog: listing, description, bounded row previews.

Blocking (PyIceberg and PyArrow are synchronous): callers run these in threads.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import psycopg
import requests
from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError, RESTError
from pyiceberg.expressions import AlwaysTrue, BooleanExpression, EqualTo
from pyiceberg.table import Table

from lakehouse.bronze.writer import RUN_ID_PROPERTY, SEPARATOR, UPLOAD_ID_PROPERTY
from lakehouse.db.lineage import read_table_lineage
from lakehouse_api.backends import Backends
from lakehouse_api.problems import ProblemError
from lakehouse_api.schemas.tables import (
    ColumnPublic,
    RowsPublic,
    SnapshotLineagePublic,
    SnapshotPublic,
    TableLineagePublic,
    TablePublic,
    TableRef,
)


@contextmanager
def catalog_errors(what: str) -> Iterator[None]:
    try:
        yield
    except (NoSuchTableError, NoSuchNamespaceError):
        raise ProblemError(404, f"{what} does not exist", kind="table-not-found") from None
    except (requests.RequestException, RESTError, OSError) as error:
        # OSError: PyArrow's S3 file system, reading data files.
        raise ProblemError(
            503,
            f"the catalog or object store is unavailable ({type(error).__name__}); retry later",
            kind="backend-unavailable",
        ) from error


def list_tables(backends: Backends) -> list[TableRef]:
    with catalog_errors("the catalog"):
        catalog = backends.catalog()
        identifiers = [t for ns in catalog.list_namespaces() for t in catalog.list_tables(ns)]
    return [TableRef(namespace=".".join(i[:-1]), name=i[-1], identifier=".".join(i)) for i in sorted(identifiers)]


def _load(backends: Backends, namespace: str, name: str) -> Table:
    with catalog_errors(f"table {namespace}.{name}"):
        return backends.catalog().load_table((namespace, name))


def _snapshot_id(table: Table, as_of: int | None) -> int | None:
    if as_of is None:
        current = table.current_snapshot()
        return current.snapshot_id if current else None
    if table.snapshot_by_id(as_of) is None:
        raise ProblemError(404, f"table {table.name()} has no snapshot {as_of}", kind="snapshot-not-found")
    return as_of


def _int(value: str | None) -> int | None:
    return int(value) if value is not None else None


def describe_table(
    backends: Backends, namespace: str, name: str, *, as_of: int | None, with_snapshots: bool
) -> TablePublic:
    table = _load(backends, namespace, name)
    snapshot_id = _snapshot_id(table, as_of)
    snapshot = table.snapshot_by_id(snapshot_id) if snapshot_id is not None else None
    # The schema as it was at that snapshot, so time travel shows the columns of the time.
    schema_id = snapshot.schema_id if snapshot and snapshot.schema_id is not None else None
    schema = table.schemas().get(schema_id, table.schema()) if schema_id is not None else table.schema()
    return TablePublic(
        namespace=namespace,
        name=name,
        identifier=f"{namespace}.{name}",
        location=table.location(),
        format_version=table.format_version,
        columns=[
            ColumnPublic(id=f.field_id, name=f.name, type=str(f.field_type), required=f.required, doc=f.doc)
            for f in schema.fields
        ],
        partitioning=[f"{f.transform}({schema.find_column_name(f.source_id)})" for f in table.spec().fields],
        snapshot_id=snapshot_id,
        row_count=_row_count(snapshot),
        snapshots=[_snapshot_public(s) for s in table.snapshots()] if with_snapshots else None,
    )


def _row_count(snapshot: Any) -> int | None:
    if snapshot is None:
        return 0  # no snapshot yet: an empty table
    return _int(snapshot.summary["total-records"]) if snapshot.summary else None


def _snapshot_public(snapshot: Any) -> SnapshotPublic:
    summary = snapshot.summary
    return SnapshotPublic(
        snapshot_id=snapshot.snapshot_id,
        parent_snapshot_id=snapshot.parent_snapshot_id,
        committed_at=dt.datetime.fromtimestamp(snapshot.timestamp_ms / 1000, dt.UTC),
        operation=str(summary.operation.value) if summary else None,
        added_records=_int(summary["added-records"]) if summary else None,
        total_records=_int(summary["total-records"]) if summary else None,
        run_id=summary.additional_properties.get(RUN_ID_PROPERTY) if summary else None,
        upload_id=summary.additional_properties.get(UPLOAD_ID_PROPERTY) if summary else None,
    )


def table_lineage(backends: Backends, namespace: str, name: str) -> TableLineagePublic:
    """Each snapshot with the run that committed it (its summary) and what that run read and wrote (table_lineage)."""
    identifier = f"{namespace}.{name}"
    snapshots = [_snapshot_public(s) for s in _load(backends, namespace, name).snapshots()]
    try:
        runs = read_table_lineage(backends.database_url, identifier, int(backends.settings.backend_timeout_seconds))
    except psycopg.OperationalError as error:
        raise ProblemError(
            503,
            f"the metadata database is unavailable ({type(error).__name__}); retry later",
            kind="backend-unavailable",
        ) from error
    data = []
    for snapshot in snapshots:
        # A group commit's snapshot names several runs (and their uploads, in the same order): one entry each.
        run_ids: list[str | None] = snapshot.run_id.split(SEPARATOR) if snapshot.run_id else [None]
        upload_ids = snapshot.upload_id.split(SEPARATOR) if snapshot.upload_id else []
        for index, run_id in enumerate(run_ids):
            run = runs.get(run_id or "")
            data.append(
                SnapshotLineagePublic(
                    snapshot_id=snapshot.snapshot_id,
                    committed_at=snapshot.committed_at,
                    operation=snapshot.operation,
                    added_records=snapshot.added_records,
                    run_id=run_id,
                    upload_id=upload_ids[index] if index < len(upload_ids) else None,
                    source_uri=run.source_uri if run else None,
                    source_sha256=run.source_sha256 if run else None,
                    raw_uri=run.raw_uri if run else None,
                    quarantine_uri=run.quarantine_uri if run else None,
                    rows_written=run.rows_written if run else None,
                )
            )
    return TableLineagePublic(table=identifier, data=data, count=len(data))


def preview_rows(
    backends: Backends, namespace: str, name: str, *, limit: int, as_of: int | None, upload_id: str | None
) -> RowsPublic:
    table = _load(backends, namespace, name)
    snapshot_id = _snapshot_id(table, as_of)
    columns = [f.name for f in table.schema().fields]
    if snapshot_id is None:  # a table nobody has written to yet
        return RowsPublic(table=f"{namespace}.{name}", snapshot_id=None, columns=columns, data=[], count=0, limit=limit)
    row_filter: BooleanExpression = EqualTo("upload_id", upload_id) if upload_id else AlwaysTrue()
    with catalog_errors(f"table {namespace}.{name}"):
        # The scan stops reading files once it has `limit` rows, so a preview of a huge table stays cheap.
        arrow = table.scan(row_filter=row_filter, snapshot_id=snapshot_id, limit=limit).to_arrow()
    rows = [{k: json_value(v) for k, v in row.items()} for row in arrow.slice(0, limit).to_pylist()]
    return RowsPublic(
        table=f"{namespace}.{name}",
        snapshot_id=snapshot_id,
        columns=arrow.column_names or columns,
        data=rows,
        count=len(rows),
        limit=limit,
    )


def json_value(value: Any) -> Any:
    """Exact JSON for Arrow values: decimals as strings (a float would round money), times in ISO 8601."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_value(v) for v in value]
    return value
