from __future__ import annotations

from enum import StrEnum


class Phase(StrEnum):
    PENDING = "Pending"
    INGESTING = "Ingesting"
    RAW_READY = "RawReady"
    TRANSFORMING = "Transforming"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"

    @property
    def is_terminal(self) -> bool:
        """Terminal phases are final: no handler acts on a run once it is done."""
        return self in (Phase.SUCCEEDED, Phase.FAILED)


# The only moves the state machine makes; anything else is a bug, refused by set_phase.
ALLOWED_TRANSITIONS: dict[Phase | None, set[Phase]] = {
    None: {Phase.PENDING, Phase.FAILED},
    Phase.PENDING: {Phase.INGESTING, Phase.FAILED},
    Phase.INGESTING: {Phase.RAW_READY, Phase.FAILED},
    Phase.RAW_READY: {Phase.TRANSFORMING, Phase.FAILED},
    Phase.TRANSFORMING: {Phase.SUCCEEDED, Phase.FAILED},
    Phase.SUCCEEDED: set(),
    Phase.FAILED: set(),
}
