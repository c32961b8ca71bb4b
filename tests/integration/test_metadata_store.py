"""MetadataStore keeps its connections between transactions, against the real PostgreSQL: a kept connection the
server ended meanwhile (a restart, an idle timeout) is replaced before a transaction uses it, and a transaction
that failed leaves no connection behind to be reused."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from lakehouse.db.metadata import MetadataStore
from lakehouse.events import FILE_UPLOADED, PipelineEvent
from tests.utils.outbox import outbox_rows
from tests.utils.runs import new_upload_id

pytestmark = pytest.mark.integration


def backend_pids(database_url: str) -> set[int]:
    """The server processes of the database's connections, other than the asking one."""
    with psycopg.connect(database_url, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return {pid for (pid,) in rows}


def add_event(store: MetadataStore, run_id: str) -> None:
    with store.transaction() as writes:
        writes.add_event(PipelineEvent(FILE_UPLOADED, run_id, run_id, {}, dt.datetime.now(dt.UTC)))


def test_a_kept_connection_ended_by_the_server_is_replaced_and_the_transaction_commits(
    migrated_database_url: str,
) -> None:
    store = MetadataStore(migrated_database_url)
    first, second = new_upload_id("ms"), new_upload_id("ms")
    add_event(store, first)
    (kept,) = backend_pids(migrated_database_url)  # the one connection the store keeps

    add_event(store, new_upload_id("ms"))
    assert backend_pids(migrated_database_url) == {kept}, "the store opened a connection instead of reusing its own"

    with psycopg.connect(migrated_database_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (kept,))
    add_event(store, second)  # on a new connection, with no error for the caller

    assert len(outbox_rows(migrated_database_url, second)) == 1
    assert kept not in backend_pids(migrated_database_url)


def test_a_failed_transaction_writes_nothing_and_its_connection_is_not_kept(migrated_database_url: str) -> None:
    store = MetadataStore(migrated_database_url)
    add_event(store, new_upload_id("ms"))
    (kept,) = backend_pids(migrated_database_url)
    run_id = new_upload_id("ms")

    with pytest.raises(RuntimeError), store.transaction() as writes:
        writes.add_event(PipelineEvent(FILE_UPLOADED, run_id, run_id, {}, dt.datetime.now(dt.UTC)))
        raise RuntimeError("the phase change failed half-way")

    assert outbox_rows(migrated_database_url, run_id) == []
    assert kept not in backend_pids(migrated_database_url)
