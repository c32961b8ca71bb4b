from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field

from lakehouse_api.schemas.base import CamelModel


class TableRef(CamelModel):
    namespace: str
    name: str
    identifier: str


class TablesPublic(CamelModel):
    data: list[TableRef]
    count: int


class ColumnPublic(CamelModel):
    id: int
    name: str
    type: str
    required: bool
    doc: str | None = None


class SnapshotPublic(CamelModel):
    snapshot_id: int
    parent_snapshot_id: int | None
    committed_at: dt.datetime
    operation: str | None
    added_records: int | None
    total_records: int | None
    run_id: str | None = Field(
        description="The IngestionRun that committed this snapshot, when recorded; comma-separated for a group commit."
    )
    upload_id: str | None = Field(
        description="The upload that run ingested, when recorded; comma-separated for a group commit."
    )


class SnapshotLineagePublic(CamelModel):
    snapshot_id: int
    committed_at: dt.datetime
    operation: str | None
    added_records: int | None
    run_id: str | None = Field(description="The IngestionRun that committed the snapshot (its snapshot summary).")
    upload_id: str | None
    source_uri: str | None = Field(description="The uploaded object the run read (table_lineage).")
    source_sha256: str | None
    raw_uri: str | None
    quarantine_uri: str | None
    rows_written: int | None


class TableLineagePublic(CamelModel):
    table: str
    data: list[SnapshotLineagePublic] = Field(description="Every snapshot of the table, oldest first.")
    count: int


class TablePublic(CamelModel):
    namespace: str
    name: str
    identifier: str
    location: str
    format_version: int
    columns: list[ColumnPublic]
    partitioning: list[str]
    snapshot_id: int | None = Field(description="The snapshot described: the current one, or the one asked for.")
    row_count: int | None = Field(description="Rows in that snapshot, from its summary (no scan).")
    snapshots: list[SnapshotPublic] | None = Field(default=None, description="All snapshots, oldest first.")


class RowsPublic(CamelModel):
    table: str
    snapshot_id: int | None
    columns: list[str]
    data: list[dict[str, Any]]
    count: int
    limit: int
