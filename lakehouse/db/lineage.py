"""Reads the `table_lineage` rows of a table: which run wrote which snapshot, from which upload."""

from __future__ import annotations

import psycopg
from psycopg.rows import class_row

from lakehouse.db.metadata import LineageRow


def read_table_lineage(database_url: str, table: str, connect_timeout: int = 5) -> dict[str, LineageRow]:
    """The lineage rows of `table` (namespace.table), by run id."""
    with psycopg.connect(database_url, connect_timeout=connect_timeout) as conn:
        cursor = conn.cursor(row_factory=class_row(LineageRow))
        rows = cursor.execute(
            """
            SELECT run_id, source_uri, source_sha256, raw_uri, quarantine_uri, target_table, snapshot_id, rows_written
            FROM table_lineage WHERE target_table = %s
            """,
            (table,),
        ).fetchall()
    return {row.run_id: row for row in rows}
