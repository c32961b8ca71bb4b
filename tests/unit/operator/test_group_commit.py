"""Group commit: one commit per table at a time; runs that arrive meanwhile go together in the next one."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import pytest
from lakehouse_operator.group_commit import GroupCommitter

from tests.utils.waiting import wait_until


class FakeTable:
    """Records each commit's members; the first commit of a key can be held until the test lets it go."""

    def __init__(self, hold_first: bool = False, fail_on: str | None = None) -> None:
        self.commits: list[tuple[str, list[str]]] = []
        self.release = threading.Event()
        self.hold_first = hold_first
        self.fail_on = fail_on
        self.committing = threading.Event()
        self.calls = 0

    def commit(self, key: str, members: Sequence[str]) -> list[str]:
        self.calls += 1
        self.committing.set()
        if self.hold_first and self.calls == 1:
            self.release.wait(10)
        self.commits.append((key, list(members)))
        if self.fail_on in members:
            raise ConnectionError("catalog unavailable")
        return [f"{key}:{member}:{len(self.commits)}" for member in members]


def submit_all(committer: GroupCommitter, pool: ThreadPoolExecutor, key: str, members: list[str]) -> list[Future]:
    futures = [pool.submit(committer.submit, key, member) for member in members]
    wait_until(lambda: committer.queued(key) == len(members), f"{len(members)} runs queued", timeout=10, poll=0.01)
    return futures


def hold_first_commit(committer: GroupCommitter, table: FakeTable, pool: ThreadPoolExecutor) -> Future:
    """run-0 commits to orders, held there until the test sets table.release."""
    first = pool.submit(committer.submit, "orders", "run-0")
    assert table.committing.wait(10)
    return first


def test_a_run_on_an_idle_table_commits_at_once_alone() -> None:
    table = FakeTable()
    committer = GroupCommitter(table.commit, max_runs=100)
    assert committer.submit("orders", "run-1") == "orders:run-1:1"
    assert committer.submit("orders", "run-2") == "orders:run-2:2"
    assert table.commits == [("orders", ["run-1"]), ("orders", ["run-2"])]
    assert committer.queued("orders") == 0


def test_runs_that_arrive_during_a_commit_go_together_in_the_next_one() -> None:
    table = FakeTable(hold_first=True)
    committer = GroupCommitter(table.commit, max_runs=100)
    with ThreadPoolExecutor(8) as pool:
        first = hold_first_commit(committer, table, pool)
        others = submit_all(committer, pool, "orders", [f"run-{i}" for i in range(1, 6)])
        table.release.set()
        results = [first.result(10), *(future.result(10) for future in others)]
    assert table.commits == [("orders", ["run-0"]), ("orders", ["run-1", "run-2", "run-3", "run-4", "run-5"])]
    assert results == ["orders:run-0:1", *(f"orders:run-{i}:2" for i in range(1, 6))]


def test_a_group_holds_at_most_max_runs() -> None:
    table = FakeTable(hold_first=True)
    committer = GroupCommitter(table.commit, max_runs=2)
    with ThreadPoolExecutor(8) as pool:
        first = hold_first_commit(committer, table, pool)
        others = submit_all(committer, pool, "orders", ["run-1", "run-2", "run-3"])
        table.release.set()
        for future in [first, *others]:
            future.result(10)
    assert [members for _, members in table.commits] == [["run-0"], ["run-1", "run-2"], ["run-3"]]


def test_a_failed_commit_fails_every_run_of_its_group_and_the_next_group_commits() -> None:
    table = FakeTable(hold_first=True, fail_on="run-2")
    committer = GroupCommitter(table.commit, max_runs=100)
    with ThreadPoolExecutor(8) as pool:
        first = hold_first_commit(committer, table, pool)
        others = submit_all(committer, pool, "orders", ["run-1", "run-2"])
        table.release.set()
        assert first.result(10) == "orders:run-0:1"
        for future in others:
            with pytest.raises(ConnectionError):
                future.result(10)
    assert committer.submit("orders", "run-1") == "orders:run-1:3"  # its stage's retry: a group of its own


def test_tables_commit_independently() -> None:
    table = FakeTable(hold_first=True)
    committer = GroupCommitter(table.commit, max_runs=100)
    with ThreadPoolExecutor(4) as pool:
        held = hold_first_commit(committer, table, pool)
        assert committer.submit("customers", "run-1") == "customers:run-1:1"  # not behind the orders commit
        assert not held.done()
        table.release.set()
        assert held.result(10) == "orders:run-0:2"
