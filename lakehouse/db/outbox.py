"""The event outbox (table `event_outbox`, migration 002): pipeline events wait here for Kafka.

OpenLineage events wait the same way in `lineage_outbox` (migration 003, the same columns), for the lineage
backend: a second table, so a lineage backend that is down never holds up a run's Kafka events.

A phase change adds its event with `add`, inside the transaction that writes the change's metadata
rows (`MetadataStore.transaction`), so the event exists exactly when the rows do. The relay then
claims a batch (`EventOutbox.claim`), publishes it and marks what the broker acknowledged as sent.

A batch holds, per run, only the oldest unsent event, so a run's events go out in the order they
were written, each after the one before it was acknowledged. Claimed rows stay locked until the
batch's transaction ends and other relays skip them (FOR UPDATE SKIP LOCKED): several operator
processes can drain one outbox without sending an event before its predecessor. A relay that dies
mid-batch leaves its rows unsent, and they are claimed again: at least once, under a stable id.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from lakehouse.events import PipelineEvent

EVENTS = "event_outbox"
LINEAGE = "lineage_outbox"
OutboxTable = Literal["event_outbox", "lineage_outbox"]


def add(conn: psycopg.Connection, event: PipelineEvent, table: OutboxTable = EVENTS) -> None:
    """Adds `event` in the caller's transaction; an event whose id is already there is not added again."""
    conn.execute(
        sql.SQL(
            """
            INSERT INTO {} (event_id, run_id, upload_id, topic, data, event_time)
            VALUES (%(event_id)s, %(run_id)s, %(upload_id)s, %(topic)s, %(data)s, %(time)s)
            ON CONFLICT (event_id) DO NOTHING
            """
        ).format(sql.Identifier(table)),
        {
            "event_id": event.id,
            "run_id": event.run_id,
            "upload_id": event.upload_id,
            "topic": event.topic,
            "data": Jsonb(event.data),
            "time": event.time,
        },
    )


@dataclass(frozen=True)
class PendingEvent:
    row_id: int
    event: PipelineEvent


class OutboxBatch:
    """Claimed events; they stay locked to this batch until its transaction ends."""

    def __init__(self, conn: psycopg.Connection, pending: list[PendingEvent], table: OutboxTable = EVENTS) -> None:
        self._conn = conn
        self.pending = pending
        self._table = sql.Identifier(table)

    def mark_sent(self, row_ids: list[int]) -> None:
        self._conn.execute(
            sql.SQL(
                "UPDATE {} SET sent_at = now(), attempts = attempts + 1, last_error = NULL WHERE id = ANY(%s)"
            ).format(self._table),
            (row_ids,),
        )

    def note_failures(self, errors: dict[int, str]) -> None:
        with self._conn.cursor() as cursor:
            cursor.executemany(
                sql.SQL("UPDATE {} SET attempts = attempts + 1, last_error = %s WHERE id = %s").format(self._table),
                [(error, row_id) for row_id, error in errors.items()],
            )


class EventOutbox:
    """The relay's side of the outbox, over one connection kept between passes; one thread uses it."""

    def __init__(self, database_url: str, connect_timeout: int = 5, table: OutboxTable = EVENTS) -> None:
        self._url = database_url
        self._connect_timeout = connect_timeout
        self._conn: psycopg.Connection | None = None
        self._table = table

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self.close()  # a server restart breaks the connection: the next pass opens a new one
            self._conn = psycopg.connect(self._url, connect_timeout=self._connect_timeout, autocommit=True)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @contextmanager
    def claim(self, limit: int) -> Iterator[OutboxBatch]:
        """The oldest unsent event of up to `limit` runs whose events no other relay holds."""
        conn = self._connection()
        with conn.transaction():
            rows = conn.execute(
                sql.SQL(
                    """
                    SELECT o.id, o.topic, o.run_id, o.upload_id, o.data, o.event_time
                    FROM {table} o
                    WHERE o.sent_at IS NULL
                      AND NOT EXISTS (
                          SELECT 1 FROM {table} earlier
                          WHERE earlier.run_id = o.run_id AND earlier.sent_at IS NULL AND earlier.id < o.id)
                    ORDER BY o.id
                    LIMIT %s
                    FOR UPDATE OF o SKIP LOCKED
                    """
                ).format(table=sql.Identifier(self._table)),
                (limit,),
            ).fetchall()
            pending = [
                PendingEvent(row_id, PipelineEvent(topic=topic, run_id=run_id, upload_id=upload_id, data=data, time=at))
                for row_id, topic, run_id, upload_id, data, at in rows
            ]
            yield OutboxBatch(conn, pending, self._table)

    def depth(self) -> int:
        """How many events wait to be sent."""
        query = sql.SQL("SELECT count(*) FROM {} WHERE sent_at IS NULL").format(sql.Identifier(self._table))
        row = self._connection().execute(query).fetchone()
        return row[0] if row else 0

    def prune(self, sent_before: dt.datetime) -> int:
        """Deletes events sent before `sent_before`; returns how many."""
        query = sql.SQL("DELETE FROM {} WHERE sent_at < %s").format(sql.Identifier(self._table))
        return self._connection().execute(query, (sent_before,)).rowcount
