"""The event outbox (table `event_outbox`, migration 002): pipeline events wait here for Kafka.

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

import psycopg
from psycopg.types.json import Jsonb

from lakehouse.events import PipelineEvent


def add(conn: psycopg.Connection, event: PipelineEvent) -> None:
    """Adds `event` in the caller's transaction; an event whose id is already there is not added again."""
    conn.execute(
        """
        INSERT INTO event_outbox (event_id, run_id, upload_id, topic, data, event_time)
        VALUES (%(event_id)s, %(run_id)s, %(upload_id)s, %(topic)s, %(data)s, %(time)s)
        ON CONFLICT (event_id) DO NOTHING
        """,
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

    def __init__(self, conn: psycopg.Connection, pending: list[PendingEvent]) -> None:
        self._conn = conn
        self.pending = pending

    def mark_sent(self, row_ids: list[int]) -> None:
        self._conn.execute(
            "UPDATE event_outbox SET sent_at = now(), attempts = attempts + 1, last_error = NULL WHERE id = ANY(%s)",
            (row_ids,),
        )

    def note_failures(self, errors: dict[int, str]) -> None:
        with self._conn.cursor() as cursor:
            cursor.executemany(
                "UPDATE event_outbox SET attempts = attempts + 1, last_error = %s WHERE id = %s",
                [(error, row_id) for row_id, error in errors.items()],
            )


class EventOutbox:
    """The relay's side of the outbox, over one connection kept between passes; one thread uses it."""

    def __init__(self, database_url: str, connect_timeout: int = 5) -> None:
        self._url = database_url
        self._connect_timeout = connect_timeout
        self._conn: psycopg.Connection | None = None

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
                """
                SELECT o.id, o.topic, o.run_id, o.upload_id, o.data, o.event_time
                FROM event_outbox o
                WHERE o.sent_at IS NULL
                  AND NOT EXISTS (
                      SELECT 1 FROM event_outbox earlier
                      WHERE earlier.run_id = o.run_id AND earlier.sent_at IS NULL AND earlier.id < o.id)
                ORDER BY o.id
                LIMIT %s
                FOR UPDATE OF o SKIP LOCKED
                """,
                (limit,),
            ).fetchall()
            pending = [
                PendingEvent(row_id, PipelineEvent(topic=topic, run_id=run_id, upload_id=upload_id, data=data, time=at))
                for row_id, topic, run_id, upload_id, data, at in rows
            ]
            yield OutboxBatch(conn, pending)

    def depth(self) -> int:
        """How many events wait to be sent."""
        row = self._connection().execute("SELECT count(*) FROM event_outbox WHERE sent_at IS NULL").fetchone()
        return row[0] if row else 0

    def prune(self, sent_before: dt.datetime) -> int:
        """Deletes events sent before `sent_before`; returns how many."""
        return self._connection().execute("DELETE FROM event_outbox WHERE sent_at < %s", (sent_before,)).rowcount
