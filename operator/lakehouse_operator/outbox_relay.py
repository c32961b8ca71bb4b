"""The outbox relay: a thread of the operator that moves pipeline events from PostgreSQL to Kafka.

Phase changes only add events to the outbox (lakehouse/db/outbox.py), in the transaction of their
rows; this thread publishes them. A run therefore never waits for Kafka, and an event waits in
PostgreSQL, not in a process's memory, until the broker acknowledged it: an outage of Kafka, a
restart of PostgreSQL or a SIGKILLed operator delays events, never loses them.

While Kafka answers, a phase change still sees its event out before it moves the status (`deliver`,
bounded), so a consumer that sees a finished run finds its events; while Kafka does not, it goes on
at once.

The lineage relay is another OutboxRelay, over the `lineage_outbox` table with the OpenLineage publisher
(lakehouse/lineage/publisher.py); nothing waits for it.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from typing import Protocol

from prometheus_client import Gauge

from lakehouse.db.outbox import EventOutbox
from lakehouse.events import PipelineEvent
from lakehouse_operator import metrics

log = logging.getLogger(__name__)
_BATCH = 100  # runs per pass: one event each
_MAX_BACKOFF_SECONDS = 5.0
_SENT_RETENTION = dt.timedelta(days=7)
_PRUNE_EVERY_SECONDS = 3600.0


class Publisher(Protocol):
    def publish_all(self, events: list[PipelineEvent]) -> dict[str, str]:
        """Sends `events` in order; the error of each one not delivered, by event id."""
        ...


class OutboxRelay:
    def __init__(
        self,
        outbox: EventOutbox,
        publisher: Publisher,
        poll_seconds: float = 1.0,
        depth: Gauge = metrics.OUTBOX_DEPTH,
        name: str = "outbox-relay",
    ) -> None:
        self._outbox = outbox
        self._publisher = publisher
        self._poll_seconds = poll_seconds
        self._depth = depth
        self._name = name
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._passes = threading.Condition()
        self._started = 0  # passes begun; guarded by _passes
        self._finished = 0  # passes ended
        self._broker_answers = True  # see broker_answers
        self._failed_passes = 0  # in a row: Kafka or PostgreSQL failed them; the wait before the next grows
        self._thread: threading.Thread | None = None
        self._pruned_at = 0.0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 15) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def broker_answers(self) -> bool:
        """False from a pass in which Kafka failed to acknowledge an event, or a `deliver` that timed out,
        until a pass in which Kafka acknowledged every event."""
        return self._broker_answers

    def deliver(self, timeout: float) -> None:
        """Wakes the relay and waits, at most `timeout` seconds, for a pass that begins after this call. That
        pass sends the oldest waiting event of each run (up to a batch of runs), so a run's new event is on
        Kafka when nothing older of that run waits; otherwise it follows in later passes. Returns at once
        while Kafka does not answer, that is from a pass that failed or a wait that timed out until a pass
        that published."""
        with self._passes:
            if not self._broker_answers or self._thread is None or not self._thread.is_alive():
                return
            wanted = self._started + 1
            self._wake.set()
            if not self._passes.wait_for(lambda: self._finished >= wanted or not self._broker_answers, timeout):
                # No answer in time counts as none: the next changes go on at once, until a pass gets one.
                self._broker_answers = False

    def drain_once(self) -> int:
        """One pass: publishes the next event of each run with events waiting; returns how many went out.
        Raises when PostgreSQL cannot be reached."""
        with self._passes:
            self._started += 1
        self._failed_passes += 1  # until the pass gets through
        try:
            sent, failed = self._publish_next()
            self._depth.set(self._outbox.depth())
            self._prune_now_and_then()
            if not failed:
                self._failed_passes = 0
            return sent
        finally:
            with self._passes:
                self._finished += 1
                self._passes.notify_all()

    def _publish_next(self) -> tuple[int, int]:
        """Events sent, events Kafka did not acknowledge."""
        with self._outbox.claim(_BATCH) as batch:
            if not batch.pending:
                return 0, 0
            errors = self._publisher.publish_all([p.event for p in batch.pending])
            batch.mark_sent([p.row_id for p in batch.pending if p.event.id not in errors])
            failed = {p.row_id: errors[p.event.id] for p in batch.pending if p.event.id in errors}
            batch.note_failures(failed)
        for pending in batch.pending:
            outcome = metrics.EVENT_PUBLISH_FAILURES if pending.event.id in errors else metrics.EVENTS_PUBLISHED
            outcome.labels(pending.event.topic).inc()
        self._set_broker_answers(not errors)
        if errors:
            log.warning(
                "%s: %d of %d events not published, kept in the outbox: %s",
                self._name,
                len(errors),
                len(batch.pending),
                next(iter(errors.values())),
            )
        return len(batch.pending) - len(errors), len(errors)

    def _set_broker_answers(self, answers: bool) -> None:
        with self._passes:
            if answers and not self._broker_answers:
                log.info("%s: events are acknowledged again", self._name)
            self._broker_answers = answers
            self._passes.notify_all()

    def _prune_now_and_then(self) -> None:
        if time.monotonic() - self._pruned_at < _PRUNE_EVERY_SECONDS:
            return
        self._pruned_at = time.monotonic()
        self._outbox.prune(dt.datetime.now(dt.UTC) - _SENT_RETENTION)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()  # a wake-up that comes during the pass below starts the next one at once
            try:
                sent = self.drain_once()
            except Exception as error:  # PostgreSQL away, or anything else: the events wait, so try again later
                log.warning("outbox not readable (%s: %s); trying again", type(error).__name__, error)
                sent = 0
            if sent and not self._failed_passes:
                continue  # the next events of those runs may be waiting already
            self._wake.wait(backoff_seconds(self._poll_seconds, self._failed_passes))
        self._outbox.close()


def backoff_seconds(poll_seconds: float, failed_passes: int) -> float:
    """The wait before the next pass: the poll interval, doubled per failed pass up to a ceiling. The
    exponent is bounded so hours of failures cannot overflow the float and end the thread."""
    if not failed_passes:
        return poll_seconds
    return min(poll_seconds * 2 ** min(failed_passes, 16), _MAX_BACKOFF_SECONDS)
