"""The event outbox and its relay against the real PostgreSQL and Kafka, each test on a database of its own."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest
from lakehouse_operator.outbox_relay import OutboxRelay
from prometheus_client import REGISTRY

from lakehouse.db.metadata import MetadataStore
from lakehouse.db.outbox import EventOutbox
from lakehouse.events import BRONZE_LAYER_COMPLETE, FILE_UPLOADED, RAW_DATA_READY, KafkaEventPublisher, PipelineEvent
from tests.utils.kafka_events import events_for, events_for_uploads
from tests.utils.operator_process import free_port
from tests.utils.outbox import outbox_rows, wait_until_drained
from tests.utils.runs import new_upload_id
from tests.utils.stack import stack_env

pytestmark = pytest.mark.integration
STEPS = [FILE_UPLOADED, RAW_DATA_READY, BRONZE_LAYER_COMPLETE]


@pytest.fixture
def bootstrap() -> str:
    return stack_env("KAFKA_BOOTSTRAP_SERVERS")["KAFKA_BOOTSTRAP_SERVERS"]


def event(topic: str, run_id: str) -> PipelineEvent:
    return PipelineEvent(topic, run_id, run_id, {"dataset": "orders"}, dt.datetime.now(dt.UTC))


def add(database_url: str, *events: PipelineEvent) -> None:
    with MetadataStore(database_url).transaction() as writes:
        for each in events:
            writes.add_event(each)


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def test_an_event_is_kept_only_with_its_transaction_and_only_once(migrated_database_url: str) -> None:
    run_id = new_upload_id("ob")
    with pytest.raises(RuntimeError), MetadataStore(migrated_database_url).transaction() as writes:
        writes.add_event(event(FILE_UPLOADED, run_id))
        raise RuntimeError("the phase change's rows could not be written")
    assert outbox_rows(migrated_database_url, run_id) == []

    add(migrated_database_url, event(FILE_UPLOADED, run_id))
    add(migrated_database_url, event(FILE_UPLOADED, run_id))  # the same phase change, replayed after a crash

    (row,) = outbox_rows(migrated_database_url, run_id)
    assert (row["event_id"], row["sent_at"]) == (event(FILE_UPLOADED, run_id).id, None)


def test_events_wait_while_the_broker_is_unreachable_then_go_out_in_order(
    migrated_database_url: str, bootstrap: str
) -> None:
    run_id = new_upload_id("ob")
    add(migrated_database_url, event(FILE_UPLOADED, run_id))
    add(migrated_database_url, event(RAW_DATA_READY, run_id))
    failures_before = sample("lakehouse_event_publish_failures_total", {"topic": FILE_UPLOADED})
    nowhere = KafkaEventPublisher({"bootstrap.servers": f"127.0.0.1:{free_port()}"}, timeout=2)  # nothing listens there

    assert OutboxRelay(EventOutbox(migrated_database_url), nowhere).drain_once() == 0

    first, second = outbox_rows(migrated_database_url, run_id)
    assert (first["sent_at"], first["attempts"]) == (None, 1) and first["last_error"]
    assert (second["sent_at"], second["attempts"]) == (None, 0)  # not tried before the event ahead of it
    assert sample("lakehouse_event_publish_failures_total", {"topic": FILE_UPLOADED}) == failures_before + 1
    assert sample("lakehouse_outbox_depth") == 2

    relay = OutboxRelay(EventOutbox(migrated_database_url), KafkaEventPublisher({"bootstrap.servers": bootstrap}))
    assert [relay.drain_once() for _ in range(3)] == [1, 1, 0]  # one event of the run per pass, in order
    assert sample("lakehouse_outbox_depth") == 0
    first, second = outbox_rows(migrated_database_url, run_id)
    assert first["sent_at"] < second["sent_at"]
    # The publish order is the sent_at order above; a consumer of two topics reads them in no set order.
    arrived = events_for(bootstrap, run_id, [FILE_UPLOADED, RAW_DATA_READY])
    assert sorted((e["topic"], e["id"]) for e in arrived) == sorted(
        (r["topic"], r["event_id"]) for r in (first, second)
    )


def test_two_relays_drain_one_outbox_in_order_per_run_and_lose_nothing(
    migrated_database_url: str, bootstrap: str
) -> None:
    """Two operator processes share the outbox: rows one relay holds are skipped by the other, and no
    event of a run goes out before the one written ahead of it was acknowledged."""
    runs = [new_upload_id("ob") for _ in range(12)]
    for topic in STEPS:  # the runs' events interleave, as concurrent runs write them
        for run_id in runs:
            add(migrated_database_url, event(topic, run_id))
    relays = [
        OutboxRelay(EventOutbox(migrated_database_url), publisher, poll_seconds=0.2)
        for publisher in (KafkaEventPublisher({"bootstrap.servers": bootstrap}) for _ in range(2))
    ]
    for relay in relays:
        relay.start()
    try:
        wait_until_drained(migrated_database_url, timeout=90)
    finally:
        for relay in relays:
            relay.stop()

    arrived = events_for_uploads(bootstrap, set(runs), STEPS)
    for run_id in runs:
        rows = outbox_rows(migrated_database_url, run_id)
        assert [r["topic"] for r in rows] == STEPS
        sent = [r["sent_at"] for r in rows]
        assert sent == sorted(sent) and len(set(sent)) == 3, f"{run_id} sent out of order: {sent}"
        on_kafka = {(e["topic"], e["id"]) for e in arrived if e["data"]["runId"] == run_id}
        assert on_kafka == {(r["topic"], r["event_id"]) for r in rows}


def test_the_relay_recovers_when_its_connection_is_cut(migrated_database_url: str, bootstrap: str) -> None:
    """What a PostgreSQL restart does to the relay's kept connection: the pass fails, the next one reconnects."""
    run_id = new_upload_id("ob")
    add(migrated_database_url, event(FILE_UPLOADED, run_id))
    outbox = EventOutbox(migrated_database_url)
    relay = OutboxRelay(outbox, KafkaEventPublisher({"bootstrap.servers": bootstrap}))
    assert relay.drain_once() == 1
    add(migrated_database_url, event(RAW_DATA_READY, run_id))
    with psycopg.connect(migrated_database_url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )

    with pytest.raises(psycopg.OperationalError):
        relay.drain_once()
    assert relay.drain_once() == 1
    assert [r["sent_at"] is not None for r in outbox_rows(migrated_database_url, run_id)] == [True, True]
