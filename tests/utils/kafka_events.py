"""Reading the pipeline's CloudEvents back from Kafka."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from confluent_kafka import Consumer, TopicPartition


def events_for(bootstrap: str, upload_id: str, topics: list[str], expect: int, timeout: float = 30) -> list[dict]:
    """Every event keyed by `upload_id` on `topics`, read from the beginning, as (topic, CloudEvent)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    found: list[dict[str, Any]] = []
    try:
        consumer.subscribe(topics)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                if len(found) >= expect and _at_end(consumer):
                    break
                continue
            if message.key() == upload_id.encode():
                event = json.loads(message.value())
                found.append({"topic": message.topic(), "headers": dict(message.headers() or []), **event})
    finally:
        consumer.close()
    return found


def _at_end(consumer: Consumer) -> bool:
    assignment = consumer.assignment()
    if not assignment:
        return False
    for partition in consumer.position(assignment):
        _, high = consumer.get_watermark_offsets(TopicPartition(partition.topic, partition.partition), timeout=5)
        if partition.offset < high:
            return False
    return True
