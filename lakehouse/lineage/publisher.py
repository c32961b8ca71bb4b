"""Sends stored OpenLineage events with the openlineage-python client, over the configured transport.

The operator's lineage relay calls it with events from the `lineage_outbox` table, in the order of each run's phases;
an event the transport refused stays there and is sent again (at least once: backends key a run's events by run id
and event type, so a repeat replaces the first). HTTP reports a refusal (a status of 400 or above, or no answer within
the timeout) and the file transport a write that failed; the Kafka transport waits for the broker (acks=all) but only
logs an event it could not deliver, so over Kafka an event can be lost while the broker is down.
"""

from __future__ import annotations

from openlineage.client import OpenLineageClient

from lakehouse.events import PipelineEvent
from lakehouse.lineage.events import from_json
from lakehouse.lineage.settings import LineageSettings
from lakehouse.settings import KafkaSettings


class LineagePublisher:
    def __init__(self, settings: LineageSettings, kafka: KafkaSettings | None = None) -> None:
        self._client = OpenLineageClient(config={"transport": settings.transport_config(kafka)})

    def publish_all(self, events: list[PipelineEvent]) -> dict[str, str]:
        """Sends `events` in order; returns the error of each one the transport did not take, by event id."""
        errors: dict[str, str] = {}
        for event in events:
            try:
                self._client.emit(from_json(event.data))
            except Exception as error:  # whatever the transport raises: the event waits for the next pass
                errors[event.id] = f"{type(error).__name__}: {error}"
        return errors
