"""The platform's Kafka events as asset events: the functions the Kafka message-queue triggers apply.

The triggerer imports them by dotted path (apply_function). Each returns the event's data for a message of
this install's namespace, and None for any other message, which the trigger then skips.
"""

from __future__ import annotations

import json
from typing import Any, Protocol


class Message(Protocol):
    def value(self) -> bytes | None: ...


def event_data(message: Message, namespace: str) -> dict[str, Any] | None:
    """The CloudEvent's `data` when the run it is about lives in `namespace`."""
    raw = message.value()
    if not raw:
        return None
    try:
        data = json.loads(raw).get("data") or {}
    except (ValueError, AttributeError):
        return None  # not a CloudEvent of ours: nothing to start
    if data.get("namespace") != namespace or not data.get("runId"):
        return None
    return data
