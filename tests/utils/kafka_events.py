"""Reading the pipeline's CloudEvents back from Kafka."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from confluent_kafka import Consumer, TopicPartition


def events_for(bootstrap: str, upload_id: str, topics: list[str], timeout: float = 30) -> list[dict[str, Any]]:
    """Every event keyed by `upload_id` on `topics`, from the start of each partition up to its end
    as it was when called. Callers wait for the run to finish first, so its events are all in."""
    return events_for_uploads(bootstrap, {upload_id}, topics, timeout)


def events_for_uploads(
    bootstrap: str, upload_ids: set[str], topics: list[str], timeout: float = 30
) -> list[dict[str, Any]]:
    """`events_for` for several uploads in one read of the topics, in the order each partition holds them."""
    keys = {upload_id.encode() for upload_id in upload_ids}
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    found: list[dict[str, Any]] = []
    try:
        remaining: dict[tuple[str, int], int] = {}  # partition -> offset of its last message
        assignment = []
        metadata = consumer.list_topics(timeout=10)
        for topic in topics:
            for partition in metadata.topics[topic].partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
                if high > low:
                    remaining[(topic, partition)] = high - 1
                    assignment.append(TopicPartition(topic, partition, low))
        consumer.assign(assignment)
        deadline = time.monotonic() + timeout
        while remaining and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            position = (message.topic(), message.partition())
            if message.offset() >= remaining.get(position, -1):
                remaining.pop(position, None)
            if message.key() in keys:
                event = json.loads(message.value())
                found.append({"topic": message.topic(), "headers": dict(message.headers() or []), **event})
        if remaining:
            raise TimeoutError(f"could not read {sorted(remaining)} to the end within {timeout}s")
    finally:
        consumer.close()
    return found
