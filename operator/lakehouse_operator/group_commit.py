"""Group commit: runs that reach the commit of one table while a commit to it is under way go together in the next.

Every Iceberg commit to a table rewrites its metadata, and concurrent commits to one table conflict and write
their files again (lakehouse.bronze.writer). So one commit per table is under way at a time: the first run to
arrive commits at once, alone (no waiting when the table is idle); runs that arrive meanwhile queue, and when that
commit ends one of them (the leader) commits the whole queue, up to `max_runs`, in one transaction. A burst of runs
thus makes a few large commits instead of many conflicting ones, without a fixed waiting window.

Each run prepares its rows in its own handler thread first, so a bad run fails alone; the group shares only the
commit. A commit that fails hands its error to every member, and each run's stage retries it on its own (its
retried commit looks for its run id first, so a group that landed before the error appends nothing again).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)
Member = TypeVar("Member")
Result = TypeVar("Result")


@dataclass
class _Waiting(Generic[Member, Result]):
    member: Member
    done: bool = False
    result: Result | None = None
    error: BaseException | None = None


@dataclass
class _Table(Generic[Member, Result]):
    queued: list[_Waiting[Member, Result]] = field(default_factory=list)
    committing: bool = False


class GroupCommitter(Generic[Key, Member, Result]):
    """`commit(key, members)` commits the members of one key (one table) together and answers their results in
    order. `submit` blocks its caller until its member's group has committed, and answers its result."""

    def __init__(self, commit: Callable[[Key, Sequence[Member]], Sequence[Result]], max_runs: int) -> None:
        self._commit = commit
        self._max_runs = max_runs
        self._changed = threading.Condition()
        self._tables: dict[Key, _Table[Member, Result]] = {}

    def submit(self, key: Key, member: Member) -> Result:
        waiting: _Waiting[Member, Result] = _Waiting(member)
        with self._changed:
            table = self._tables.setdefault(key, _Table())
            table.queued.append(waiting)
        while True:
            with self._changed:
                self._changed.wait_for(lambda: waiting.done or not table.committing)
                if waiting.done:
                    # Only this table's entry: a late waker must not drop a newer one that is committing.
                    if not table.committing and not table.queued and self._tables.get(key) is table:
                        del self._tables[key]
                    if waiting.error is not None:
                        raise waiting.error
                    return waiting.result  # type: ignore[return-value]
                table.committing = True  # this caller leads the next group (which may not include it)
                group, table.queued = table.queued[: self._max_runs], table.queued[self._max_runs :]
            self._lead(key, table, group)

    def queued(self, key: Key) -> int:
        """How many runs of `key` wait for the next commit."""
        with self._changed:
            table = self._tables.get(key)
            return len(table.queued) if table else 0

    def _lead(self, key: Key, table: _Table[Member, Result], group: list[_Waiting[Member, Result]]) -> None:
        try:
            results = self._commit(key, [waiting.member for waiting in group])
        except BaseException as error:  # every member's attempt failed with it; each run retries on its own
            outcome: list[tuple[Result | None, BaseException | None]] = [(None, error)] * len(group)
        else:
            outcome = [(result, None) for result in results]
        with self._changed:
            for waiting, (result, error) in zip(group, outcome, strict=True):
                waiting.result, waiting.error, waiting.done = result, error, True
            table.committing = False
            self._changed.notify_all()
