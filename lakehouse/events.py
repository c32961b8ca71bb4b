"""Pipeline events on Kafka as JSON CloudEvents (structured mode, spec 1.0).

Each event's id is derived from the run and the event type, so a retried step that publishes
again produces the same id and consumers can drop the duplicate. Messages are keyed by the
upload id, so all events of one upload stay in order on one partition.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException, Producer

FILE_UPLOADED = "file-uploaded"
RAW_DATA_READY = "raw-data-ready"
BRONZE_LAYER_COMPLETE = "bronze-layer-complete"
INGESTION_FAILED = "ingestion-failed"
# Every topic the platform publishes to; the local stack creates these (devstack/services/kafka.sh).
TOPICS = (FILE_UPLOADED, RAW_DATA_READY, BRONZE_LAYER_COMPLETE, INGESTION_FAILED)

EVENT_TYPE_PREFIX = "dev.lakehouse.ingestion."
EVENT_SOURCE = "/lakehouse/operator"
_EVENT_ID_NAMESPACE = uuid.UUID("5b0f4a52-3c1e-4c8e-9d0a-6f1f2b7e9a11")


@dataclass(frozen=True)
class PipelineEvent:
    topic: str
    run_id: str
    upload_id: str
    data: dict[str, Any]
    time: dt.datetime

    @property
    def id(self) -> str:
        return str(uuid.uuid5(_EVENT_ID_NAMESPACE, f"{self.run_id}/{self.topic}"))

    def to_cloudevent(self) -> dict[str, Any]:
        return {
            "specversion": "1.0",
            "id": self.id,
            "source": EVENT_SOURCE,
            "type": EVENT_TYPE_PREFIX + self.topic,
            "subject": self.run_id,
            "time": self.time.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
            "datacontenttype": "application/json",
            "data": {"runId": self.run_id, "uploadId": self.upload_id, **self.data},
        }


class EventPublishError(RuntimeError):
    pass


class KafkaEventPublisher:
    """Synchronous publish: returns once the broker acknowledged the event (acks=all)."""

    def __init__(self, bootstrap_servers: str, timeout: float = 15.0) -> None:
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap_servers,
                "enable.idempotence": True,
                "acks": "all",
                "message.timeout.ms": int(timeout * 1000),
                "client.id": "lakehouse-operator",
            }
        )
        self._timeout = timeout

    def publish(self, event: PipelineEvent) -> None:
        errors: list[str] = []

        def delivered(error: Any, _message: Any) -> None:
            if error is not None:
                errors.append(str(error))

        try:
            self._producer.produce(
                event.topic,
                key=event.upload_id.encode(),
                value=json.dumps(event.to_cloudevent()).encode(),
                headers=[
                    ("content-type", b"application/cloudevents+json"),
                    ("ce_id", event.id.encode()),
                    ("upload_id", event.upload_id.encode()),
                ],
                on_delivery=delivered,
            )
        except (KafkaException, BufferError) as error:
            raise EventPublishError(f"cannot publish {event.topic} for {event.run_id}: {error}") from error
        remaining = self._producer.flush(self._timeout)
        if remaining or errors:
            reason = "; ".join(errors) or f"not acknowledged within {self._timeout}s"
            raise EventPublishError(f"cannot publish {event.topic} for {event.run_id}: {reason}")
