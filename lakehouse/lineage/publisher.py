"""Sends stored OpenLineage events with the openlineage-python client, over the configured transport.

The operator's lineage relay calls it with events from the `lineage_outbox` table, in the order of each run's phases;
an event the transport did not deliver stays there and is sent again (at least once: backends key a run's events by
run id and event type, so a repeat replaces the first). HTTP reports a refusal (a status of 400 or above, or no
answer within the timeout), the file transport a write that failed, and Kafka a message the broker did not
acknowledge (AcknowledgedKafkaTransport: the client's own Kafka transport only logs it).
"""

from __future__ import annotations

from typing import Any

from openlineage.client import OpenLineageClient
from openlineage.client.serde import Serde
from openlineage.client.transport.kafka import KafkaConfig, KafkaTransport

from lakehouse.events import PipelineEvent
from lakehouse.lineage.events import from_json
from lakehouse.lineage.settings import LineageSettings
from lakehouse.settings import KafkaSettings


class AcknowledgedKafkaTransport(KafkaTransport):
    """The client's Kafka transport, except that an event the broker did not acknowledge (acks=all, within
    `message.timeout.ms`) raises, so it waits in the outbox. A run's events share a key, its parent's job when it
    has one (as the client keys them), so they stay in order on one partition."""

    def emit(self, event: Any) -> None:
        if self.producer is None:
            self._setup_producer(self.kafka_config.config)
        assert self.producer is not None
        failures: list[Any] = []
        self.producer.produce(
            topic=self.topic,
            key=self.message_key or _run_key(event),
            value=Serde.to_json(event).encode("utf-8"),
            on_delivery=lambda error, _message: failures.append(error) if error else None,
        )
        self.producer.flush()  # returns once the broker answered or the message timed out
        if failures:
            raise RuntimeError(f"Kafka did not acknowledge the event: {failures[0]}")


def _run_key(event: Any) -> str:
    parent = (event.run.facets or {}).get("parent")
    job = parent["job"] if isinstance(parent, dict) else {"namespace": event.job.namespace, "name": event.job.name}
    return f"run:{job['namespace']}/{job['name']}"


class LineagePublisher:
    def __init__(self, settings: LineageSettings, kafka: KafkaSettings | None = None) -> None:
        config = settings.transport_config(kafka)
        if config["type"] == "kafka":
            transport = AcknowledgedKafkaTransport(KafkaConfig.from_dict(dict(config)))
            self._client = OpenLineageClient(transport=transport)
        else:
            self._client = OpenLineageClient(config={"transport": config})

    def publish_all(self, events: list[PipelineEvent]) -> dict[str, str]:
        """Sends `events` in order; returns the error of each one the transport did not take, by event id."""
        errors: dict[str, str] = {}
        for event in events:
            try:
                self._client.emit(from_json(event.data))
            except Exception as error:  # whatever the transport raises: the event waits for the next pass
                errors[event.id] = f"{type(error).__name__}: {error}"
        return errors
