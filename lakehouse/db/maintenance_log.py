"""The table maintenance log (migration 003) and the lock that keeps one maintenance run per table.

The lock is a PostgreSQL session advisory lock held on the log's connection for the whole run: a second
process (another operator replica, `lakehouse maintenance run` by hand) that asks for it is told no at once and
skips the table. A process that dies releases it with its connection.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

import psycopg

# The lock's first key, naming the kind of lock (migrate.py's lock uses the one-key form, so they never meet).
_LOCK_CLASS = 0x1A4E_0002


def lock_key(table_name: str) -> int:
    """The second key: the table's name as a signed 32-bit number."""
    return int.from_bytes(zlib.crc32(table_name.encode()).to_bytes(4, "big"), "big", signed=True)


@dataclass(frozen=True)
class MaintenanceCounts:
    files_rewritten: int = 0
    files_written: int = 0
    compaction_snapshot: int | None = None
    snapshots_expired: int = 0
    orphan_files_removed: int = 0


class LockedTable:
    """The log of one table, while this process holds its lock."""

    def __init__(self, conn: psycopg.Connection, dataset: str, table_name: str) -> None:
        self._conn = conn
        self.dataset = dataset
        self.table_name = table_name

    def last_started(self) -> dt.datetime | None:
        row = self._conn.execute(
            "SELECT max(started_at) FROM table_maintenance WHERE table_name = %s", (self.table_name,)
        ).fetchone()
        return row[0] if row else None

    def start(self, trigger: str) -> int:
        row = self._conn.execute(
            "INSERT INTO table_maintenance (dataset, table_name, trigger, status) VALUES (%s, %s, %s, 'running') "
            "RETURNING id",
            (self.dataset, self.table_name, trigger),
        ).fetchone()
        assert row is not None
        return int(row[0])

    def finish(self, row_id: int, status: str, counts: MaintenanceCounts, message: str | None = None) -> None:
        self._conn.execute(
            """
            UPDATE table_maintenance SET status = %s, finished_at = now(), files_rewritten = %s, files_written = %s,
                compaction_snapshot = %s, snapshots_expired = %s, orphan_files_removed = %s, message = %s
            WHERE id = %s
            """,
            (
                status,
                counts.files_rewritten,
                counts.files_written,
                counts.compaction_snapshot,
                counts.snapshots_expired,
                counts.orphan_files_removed,
                message,
                row_id,
            ),
        )


class MaintenanceLog:
    def __init__(self, database_url: str, connect_timeout: int = 5) -> None:
        self._url = database_url
        self._connect_timeout = connect_timeout

    @contextmanager
    def locked(self, dataset: str, table_name: str) -> Iterator[LockedTable | None]:
        """The table's log with its lock held for the block, or None when another process holds the lock."""
        with psycopg.connect(self._url, autocommit=True, connect_timeout=self._connect_timeout) as conn:
            key = (_LOCK_CLASS, lock_key(table_name))
            row = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", key).fetchone()
            if not (row and row[0]):
                yield None
                return
            try:
                yield LockedTable(conn, dataset, table_name)
            finally:
                with suppress(psycopg.Error):  # a lost connection released the lock already
                    conn.execute("SELECT pg_advisory_unlock(%s, %s)", key)
