"""Pipeline events on Kafka as JSON CloudEvents (structured mode, spec 1.0).

Each event's id is derived from the run and the event type, so a retried step that publishes
again produces the same id and consumers can drop the duplicate. Messages are keyed by the
upload id. Events reach Kafka through the operator's outbox relay (lakehouse/db/outbox.py),
which publishes a run's events in the order its phases changed, each once the one before
was acknowledged: delivered at least once, never lost, and never before the run's rows.
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


class KafkaEventPublisher:
    """Publishes events and reports which ones the broker acknowledged (acks=all).

    Only the operator's outbox relay calls it: runs never wait for Kafka (lakehouse/db/outbox.py).
    """

    def __init__(self, connection: dict[str, str], timeout: float = 10.0) -> None:
        """`connection`: KafkaSettings.client_config(), or {"bootstrap.servers": ...} for a plain broker."""
        self._config = {
            **connection,
            "enable.idempotence": True,
            "acks": "all",
            "message.timeout.ms": int(timeout * 1000),
            # After an outage the queued events go out within seconds of the broker's return.
            "reconnect.backoff.max.ms": 2000,
            "client.id": "lakehouse-operator",
        }
        self._producer = Producer(self._config)
        self._timeout = timeout

    def publish_all(self, events: list[PipelineEvent]) -> dict[str, str]:
        """Sends `events` in order and waits for the broker; returns the error of each event it did not
        acknowledge, by event id (empty when all arrived)."""
        errors: dict[str, str] = {}
        acknowledged: set[str] = set()
        fatal = False

        def delivered(event_id: str, error: Any) -> None:
            nonlocal fatal
            if error is None:
                acknowledged.add(event_id)
                return
            errors[event_id] = str(error)
            fatal = fatal or error.fatal()

        for event in events:
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
                    on_delivery=lambda error, _message, event_id=event.id: delivered(event_id, error),
                )
            except (KafkaException, BufferError) as error:
                errors[event.id] = str(error)
        self._producer.flush(self._timeout)
        for event in events:
            if event.id not in acknowledged and event.id not in errors:
                errors[event.id] = f"not acknowledged within {self._timeout}s"
        if fatal:  # an idempotent producer that hit a fatal error accepts nothing more: start afresh
            self._producer = Producer(self._config)
        return errors
