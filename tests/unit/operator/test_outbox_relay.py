"""OutboxRelay.deliver: a phase change sees its event out while Kafka answers, and never waits while it does not
(fakes stand in for the outbox table and Kafka; tests/integration/test_outbox.py uses the real ones)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from lakehouse_operator.outbox_relay import OutboxRelay, backoff_seconds

from lakehouse.db.outbox import PendingEvent
from lakehouse.events import FILE_UPLOADED, PipelineEvent


class FakeOutbox:
    def __init__(self) -> None:
        self.waiting: list[PendingEvent] = []
        self.open = threading.Event()  # cleared: a pass blocks in claim, as on a slow database
        self.open.set()

    def add(self, run_id: str) -> PipelineEvent:
        event = PipelineEvent(FILE_UPLOADED, run_id, run_id, {}, dt.datetime.now(dt.UTC))
        self.waiting.append(PendingEvent(len(self.waiting), event))
        return event

    @contextmanager
    def claim(self, limit: int) -> Iterator[FakeBatch]:
        self.open.wait()
        yield FakeBatch(self, self.waiting[:limit])

    def depth(self) -> int:
        return len(self.waiting)

    def prune(self, sent_before: dt.datetime) -> int:
        return 0

    def close(self) -> None:
        pass


class FakeBatch:
    def __init__(self, outbox: FakeOutbox, pending: list[PendingEvent]) -> None:
        self.outbox = outbox
        self.pending = pending

    def mark_sent(self, row_ids: list[int]) -> None:
        self.outbox.waiting = [p for p in self.outbox.waiting if p.row_id not in row_ids]

    def note_failures(self, errors: dict[int, str]) -> None:
        pass


class FakeKafka:
    def __init__(self, answers: bool, outbox: FakeOutbox) -> None:
        self.answers = answers
        self.outbox = outbox
        self.published: list[PipelineEvent] = []
        self.attempts = 0

    def publish_all(self, events: list[PipelineEvent]) -> dict[str, str]:
        self.attempts += 1
        if not self.answers:
            self.outbox.open.clear()  # the relay's next pass will not get past claim
            return {e.id: "Local: Message timed out" for e in events}
        self.published.extend(events)
        return {}


@contextmanager
def running(outbox: FakeOutbox, kafka: FakeKafka) -> Iterator[OutboxRelay]:
    relay = OutboxRelay(outbox, kafka, poll_seconds=0.05)  # type: ignore[arg-type]
    relay.start()
    try:
        yield relay
    finally:
        outbox.open.set()
        relay.stop()


def test_deliver_returns_once_the_event_is_on_kafka() -> None:
    outbox = FakeOutbox()
    kafka = FakeKafka(answers=True, outbox=outbox)
    with running(outbox, kafka) as relay:
        event = outbox.add("u-1")
        relay.deliver(timeout=60)

        assert kafka.published == [event]
        assert outbox.waiting == []


def test_deliver_does_not_wait_while_kafka_does_not_answer() -> None:
    outbox = FakeOutbox()
    kafka = FakeKafka(answers=False, outbox=outbox)
    with running(outbox, kafka) as relay:
        outbox.add("u-1")
        deadline = time.monotonic() + 30
        while relay.broker_answers:
            assert time.monotonic() < deadline, "the relay never found Kafka failing"
            time.sleep(0.01)

        # No pass of the relay can end now: had deliver waited for one, it would not have returned.
        relay.deliver(timeout=120)

        assert kafka.attempts == 1
        assert len(outbox.waiting) == 1  # the event waits for Kafka in the outbox


def test_the_backoff_doubles_to_its_ceiling_and_survives_hours_of_failures() -> None:
    assert [backoff_seconds(0.5, n) for n in (0, 1, 2, 3)] == [0.5, 1.0, 2.0, 4.0]
    assert backoff_seconds(0.5, 10) == 5.0
    # Thousands of failed passes (hours of outage) once overflowed the float and ended the thread.
    assert backoff_seconds(0.5, 2000) == 5.0
