"""Kafka of the local stack: the platform topics as declared, and a keyed round trip through a real broker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient, ConfigEntry, ConfigResource, NewTopic

from lakehouse.events import TOPICS
from lakehouse.topics import TopicSpec, ensure_topics
from tests.utils.stack import stack_env
from tests.utils.waiting import wait_until

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


@pytest.fixture
def spec_topics(admin: AdminClient) -> Iterator[list[str]]:
    """Two fresh topic names for lakehouse.topics to create; deleted afterwards."""
    names = [f"test-spec-{uuid.uuid4().hex[:12]}" for _ in range(2)]
    try:
        yield names
    finally:
        existing = admin.list_topics(timeout=TIMEOUT_S).topics
        for future in admin.delete_topics([n for n in names if n in existing]).values():
            future.result(TIMEOUT_S)


def topic_state(admin: AdminClient, name: str) -> tuple[int, int, dict[str, str]]:
    """Partitions, replicas and the topic's configs that are not the broker's defaults, once the broker
    knows the topic (a created topic reaches the broker's metadata shortly after the controller's answer)."""

    def configs() -> dict[str, ConfigEntry] | None:
        resource = ConfigResource(ConfigResource.Type.TOPIC, name)
        try:
            return admin.describe_configs([resource])[resource].result(TIMEOUT_S)
        except KafkaException as error:
            if error.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise
            return None

    explicit = {key: e.value for key, e in wait_until(configs, f"{name} known", TIMEOUT_S).items() if not e.is_default}
    partitions = admin.list_topics(name, timeout=TIMEOUT_S).topics[name].partitions
    return len(partitions), len(next(iter(partitions.values())).replicas), explicit


def test_topics_are_created_then_brought_to_their_settings(
    admin: AdminClient, bootstrap: str, spec_topics: list[str]
) -> None:
    """What the chart's topics Job does on each install and upgrade (python -m lakehouse.topics)."""
    first, second = spec_topics
    config = {"retention.ms": "3600000", "compression.type": "snappy", "min.insync.replicas": "1"}
    specs = [TopicSpec(first, 2, 1, config), TopicSpec(second, 1, 1, {})]

    assert ensure_topics(admin, specs) == {first: "created", second: "created"}
    assert topic_state(admin, first) == (2, 1, config)
    assert ensure_topics(admin, specs) == {first: "unchanged", second: "unchanged"}  # idempotent

    grown = [TopicSpec(first, 4, 1, config | {"retention.ms": "7200000"}), TopicSpec(second, 1, 2, {})]
    outcomes = ensure_topics(admin, grown)
    assert outcomes[first] == "partitions 2 -> 4; set retention.ms"
    assert outcomes[second] == "has 1 replicas, not 2: reassign its partitions to change that"  # never forced
    grown_state = (4, 1, config | {"retention.ms": "7200000"})  # the new partitions reach metadata shortly after
    wait_until(lambda: topic_state(admin, first) == grown_state, f"{first} grown", TIMEOUT_S)
    assert topic_state(admin, second)[:2] == (1, 1)

    # The broker takes messages under the settings it was given (snappy recompression included).
    produce(bootstrap, first, [(b"k", b"v", [])])


def test_topics_job_refuses_settings_that_lack_a_platform_topic() -> None:
    partial = {name: {"partitions": 1, "replicas": 1} for name in TOPICS[1:]}
    done = subprocess.run(
        [sys.executable, "-m", "lakehouse.topics"],
        check=False,
        env={**os.environ, "LAKEHOUSE_TOPICS": json.dumps(partial)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert f"lacks topics the platform publishes to: {TOPICS[0]}" in done.stderr
