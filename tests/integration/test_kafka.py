"""Kafka of the local stack: the platform topics as declared, and a keyed round trip through a real broker."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from lakehouse.events import TOPICS
from tests.utils.stack import stack_env

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 30

Record = tuple[bytes, bytes, list[tuple[str, bytes]]]  # key, value, headers


def declared(name: str) -> str:
    """A value of devstack/config.env as the stack scripts see it (environment overrides included)."""
    out = subprocess.run(
        ["bash", "-c", f'source devstack/config.env && printf %s "${name}"'],
        cwd=REPO_ROOT,
        env=os.environ,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert out, f"{name} is not declared in devstack/config.env"
    return out


@pytest.fixture(scope="module")
def bootstrap() -> str:
    return stack_env("KAFKA_BOOTSTRAP_SERVERS")["KAFKA_BOOTSTRAP_SERVERS"]


@pytest.fixture(scope="module")
def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


@pytest.fixture
def scratch_topic(admin: AdminClient) -> Iterator[str]:
    """A fresh three-partition topic, deleted afterwards."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])[name].result(TIMEOUT_S)
    try:
        yield name
    finally:
        admin.delete_topics([name], operation_timeout=TIMEOUT_S)[name].result(TIMEOUT_S)


def produce(bootstrap: str, topic: str, records: list[Record]) -> list[Message]:
    """Sends (key, value, headers) records and returns their delivery reports, failing on any error."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    delivered: list[Message] = []
    errors: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            errors.append(err)
        else:
            delivered.append(msg)

    for key, value, headers in records:
        producer.produce(topic, key=key, value=value, headers=headers, on_delivery=on_delivery)
    assert producer.flush(TIMEOUT_S) == 0, "messages still undelivered after the timeout"
    assert not errors, errors
    assert len(delivered) == len(records)
    return delivered


def test_platform_topics_have_declared_partitions_and_retention(admin: AdminClient) -> None:
    partitions = int(declared("KAFKA_TOPIC_PARTITIONS"))
    retention_ms = declared("KAFKA_TOPIC_RETENTION_MS")

    topics = admin.list_topics(timeout=TIMEOUT_S).topics
    missing = [t for t in TOPICS if t not in topics]
    assert not missing, f"topics missing on the broker: {missing} (does `make up` create them?)"
    for name in TOPICS:
        assert len(topics[name].partitions) == partitions, name

    resources = [ConfigResource(ConfigResource.Type.TOPIC, name) for name in TOPICS]
    for resource, future in admin.describe_configs(resources).items():
        configs = future.result(TIMEOUT_S)
        assert configs["retention.ms"].value == retention_ms, resource.name
        assert not configs["retention.ms"].is_default, resource.name


def test_keyed_message_round_trip(bootstrap: str, scratch_topic: str) -> None:
    key = b"order-42"
    value = f'{{"id": 42, "sent": "{uuid.uuid4()}"}}'.encode()
    headers = [("content-type", b"application/json"), ("trace-id", uuid.uuid4().bytes)]
    [report] = produce(bootstrap, scratch_topic, [(key, value, headers)])

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex[:12]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.subscribe([scratch_topic])
        received: Message | None = None
        deadline = time.monotonic() + TIMEOUT_S
        while received is None and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            received = msg
        assert received is not None, f"nothing consumed from {scratch_topic} within {TIMEOUT_S}s"
        consumer.commit(received, asynchronous=False)  # the group coordinator works too
    finally:
        consumer.close()

    assert received.key() == key
    assert received.value() == value
    assert received.headers() == headers
    assert (received.partition(), received.offset()) == (report.partition(), report.offset())


def test_messages_with_the_same_key_share_a_partition(bootstrap: str, scratch_topic: str) -> None:
    keys = [f"customer-{i}".encode() for i in range(12)]
    records = [(key, f"event-{n}".encode(), []) for n in range(5) for key in keys]
    reports = produce(bootstrap, scratch_topic, records)

    partitions_by_key: dict[bytes, set[int]] = {}
    for report in reports:
        partitions_by_key.setdefault(report.key(), set()).add(report.partition())
    assert all(len(p) == 1 for p in partitions_by_key.values()), partitions_by_key
    # twelve keys over three partitions: the keys are spread, not all sent to one partition
    assert len(set().union(*partitions_by_key.values())) > 1
