from __future__ import annotations

import abc
import datetime as dt
from dataclasses import dataclass, field
from typing import Any, ClassVar

from lakehouse.contracts.model import DatasetContract
from lakehouse.ingest.validation import CheckResult


@dataclass(frozen=True)
class RunContext:
    """What an engine needs to know about one run; built from the IngestionRun by the handlers."""

    name: str
    namespace: str
    upload_id: str
    dataset: str
    contract: DatasetContract
    source_uri: str
    source_format: str
    source_sha256: str | None
    processing_date: dt.date
    ingest_timestamp: dt.datetime  # naive UTC: the run's start, stamped on its bronze rows
    target_table: str
    owner: dict[str, Any]  # ownerReference material for child objects (apiVersion, kind, name, uid)


@dataclass(frozen=True)
class IngestOutcome:
    input_rows: int
    valid_rows: int
    rejected_rows: int
    raw_uri: str
    quarantine_uri: str | None
    bytes_in: int
    checks: list[CheckResult] = field(default_factory=list)  # data-quality counts, when the engine has them
    # When the engine started on the run, if it worked asynchronously (the job row measures from there).
    started_at: dt.datetime | None = None


@dataclass(frozen=True)
class TransformOutcome:
    table: str
    snapshot_id: int | None
    rows_written: int


@dataclass(frozen=True)
class StillRunning:
    """The engine works asynchronously and is not finished; ask again after `delay` seconds."""

    message: str
    delay: float = 5.0
    # A stable line for the run's status while it waits (e.g. "NiFi is not reachable"); None: leave it.
    status: str | None = None


class RunRejectedError(Exception):
    """The run cannot succeed whatever we retry (bad file, unknown dataset, missing object).

    `reason` is the CamelCase condition reason; the message says what to do about it.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class IngestEngine(abc.ABC):
    """An ingest engine; the Runtime registers each under its IngestEngineName."""

    # Does its work in the operator's handler thread and returns an outcome, never StillRunning: the handler
    # before it may run its stage straight on, without a hand-off through Kopf (handlers._go_on).
    runs_in_process: ClassVar[bool] = False

    @abc.abstractmethod
    def ingest(self, run: RunContext) -> IngestOutcome | StillRunning:
        """Validate the upload into raw/ and quarantine/. Called again until it returns an outcome;
        must be idempotent: a repeated call after a crash writes the same objects."""


class TransformEngine(abc.ABC):
    """A transform engine; the Runtime registers each under its TransformEngineName."""

    runs_in_process: ClassVar[bool] = False  # as IngestEngine's

    @abc.abstractmethod
    def transform(self, run: RunContext, raw_uri: str) -> TransformOutcome | StillRunning:
        """Append the run's raw rows to its bronze table exactly once."""
