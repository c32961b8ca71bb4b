"""Reading the event outbox (lakehouse/db/outbox.py) of a test's own database."""

from __future__ import annotations

import time
from typing import Any

import psycopg
from psycopg.rows import dict_row

from tests.utils.waiting import wait_until


def outbox_rows(database_url: str, run_id: str) -> list[dict[str, Any]]:
    """The run's events in the order they were written."""
    with psycopg.connect(database_url) as conn, conn.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(
            """SELECT event_id::text, topic, sent_at, attempts, last_error
               FROM event_outbox WHERE run_id = %s ORDER BY id""",
            (run_id,),
        ).fetchall()


def unsent(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM event_outbox WHERE sent_at IS NULL").fetchone()
    return row[0] if row else 0


def wait_until_drained(database_url: str, timeout: float) -> float:
    """Waits until every event in the outbox is marked sent; returns the seconds it took."""
    started = time.monotonic()
    wait_until(lambda: unsent(database_url) == 0, "every event in the outbox sent", timeout, poll=0.2)
    return time.monotonic() - started
