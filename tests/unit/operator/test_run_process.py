"""Per-run process bookkeeping (engines.run_process) with real, short child processes.

A second RunProcesses on the same directory is what an operator sees after a restart: nothing in
memory, only the run's directory and whatever still holds its lock.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from lakehouse_operator.engines.run_process import Ended, Running, RunProcesses

UID = "5b0c6a1e-8d4f-4f0e-9a57-2d6f3c1b7e10"


def until_ended(processes: RunProcesses, uid: str = UID, timeout: float = 20) -> Ended:
    deadline = time.monotonic() + timeout
    while not isinstance(state := processes.state(uid), Ended):
        assert state is not None, "the run's process vanished"
        assert time.monotonic() < deadline, f"still {state} after {timeout}s"
        time.sleep(0.05)
    return state


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for whoever adopted it to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def counting(marker: Path, then: str) -> list[str]:
    """A command that records each start in `marker`, then runs the shell code `then`."""
    return ["/bin/sh", "-c", f'echo started >> "{marker}"; {then}']


def test_a_run_gets_one_process_however_often_it_is_started(tmp_path: Path) -> None:
    processes = RunProcesses(tmp_path / "runs", keep_seconds=3600)
    marker, release = tmp_path / "starts", tmp_path / "release"
    command = counting(marker, f'while [ ! -e "{release}" ]; do sleep 0.05; done; echo \'{{"ok": 1}}\'')

    first = processes.start(UID, command, dict(os.environ))
    again = processes.start(UID, command, dict(os.environ))  # a replayed event
    after_restart = RunProcesses(tmp_path / "runs", keep_seconds=3600)  # a new operator: nothing in memory
    assert isinstance(after_restart.state(UID), Running)
    also = after_restart.start(UID, command, dict(os.environ))

    assert isinstance(first, Running)
    assert again == also == first  # the same process, with its own start time
    release.touch()
    ended = until_ended(after_restart)
    assert (ended.exit_status, ended.stdout) == (0, '{"ok": 1}\n')
    assert marker.read_text() == "started\n"


def test_an_orphan_is_followed_to_its_exit_status_after_its_operator_died(tmp_path: Path) -> None:
    """The process outlives the operator that started it; its status is still there to read."""
    root, marker, release = tmp_path / "runs", tmp_path / "starts", tmp_path / "release"
    command = counting(marker, f'while [ ! -e "{release}" ]; do sleep 0.05; done; echo bad >&2; exit 3')
    operator = textwrap.dedent(f"""
        import os
        from pathlib import Path
        from lakehouse_operator.engines.run_process import RunProcesses
        RunProcesses(Path({str(root)!r}), keep_seconds=3600).start({UID!r}, {command!r}, dict(os.environ))
        os._exit(0)  # gone without a word, like a SIGKILLed operator
    """)
    subprocess.run([sys.executable, "-c", operator], check=True, timeout=30)

    restarted = RunProcesses(root, keep_seconds=3600)
    assert isinstance(restarted.state(UID), Running)
    assert isinstance(restarted.start(UID, command, dict(os.environ)), Running)
    release.touch()

    ended = until_ended(restarted)
    assert (ended.exit_status, ended.stderr) == (3, "bad\n")
    assert marker.read_text() == "started\n"


def test_a_result_is_used_once_then_the_run_can_start_again(tmp_path: Path) -> None:
    processes = RunProcesses(tmp_path / "runs", keep_seconds=3600)
    marker = tmp_path / "starts"
    processes.start(UID, counting(marker, "exit 1"), dict(os.environ))
    assert until_ended(processes).exit_status == 1

    processes.forget(UID)
    assert processes.state(UID) is None
    processes.start(UID, counting(marker, "echo second"), dict(os.environ))

    ended = until_ended(processes)
    assert (ended.exit_status, ended.stdout) == (0, "second\n")
    assert marker.read_text() == "started\nstarted\n"


def test_stop_kills_the_whole_process_group(tmp_path: Path) -> None:
    """Like spark-submit's JVM and its Python driver: a child of the command dies with it."""
    processes = RunProcesses(tmp_path / "runs", keep_seconds=3600)
    grandchild_pid = tmp_path / "grandchild"
    command = ["/bin/sh", "-c", f'sleep 60 & echo $! > "{grandchild_pid}"; wait']
    processes.start(UID, command, dict(os.environ))
    deadline = time.monotonic() + 10
    while not grandchild_pid.exists() or not grandchild_pid.read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.05)

    processes.stop(UID)

    ended = until_ended(processes)  # the lock is free only once every process of the group is gone
    assert ended.exit_status is None  # the wrapper died too: nobody could write one
    assert not alive(int(grandchild_pid.read_text()))


def test_a_directory_without_a_started_command_counts_as_no_process(tmp_path: Path) -> None:
    """The operator stopped after taking the run's lock but before the command ran."""
    directory = tmp_path / "runs" / UID
    directory.mkdir(parents=True)
    (directory / "lock").touch()
    (directory / "started-at").write_text(f"{time.time()}\n")
    processes = RunProcesses(tmp_path / "runs", keep_seconds=3600)

    assert processes.state(UID) is None
    processes.start(UID, ["/bin/sh", "-c", "echo ran"], dict(os.environ))
    assert until_ended(processes).stdout == "ran\n"


def test_old_ended_directories_are_pruned_but_never_a_running_one(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    processes = RunProcesses(root, keep_seconds=1)
    old_uid, running_uid = "0a1b2c3d-0000-4000-8000-000000000001", "0a1b2c3d-0000-4000-8000-000000000002"
    processes.start(old_uid, ["/bin/true"], dict(os.environ))
    until_ended(processes, old_uid)
    processes.start(running_uid, ["/bin/sh", "-c", "sleep 3"], dict(os.environ))
    for uid in (old_uid, running_uid):
        (root / uid / "started-at").write_text(f"{time.time() - 10}\n")

    processes.start(UID, ["/bin/true"], dict(os.environ))  # each start prunes

    assert processes.state(old_uid) is None and not (root / old_uid).exists()
    assert isinstance(processes.state(running_uid), Running)
    processes.stop(running_uid)


def test_uids_cannot_leave_the_directory(tmp_path: Path) -> None:
    processes = RunProcesses(tmp_path / "runs", keep_seconds=3600)
    for uid in ("", "..", "../x", ".hidden"):
        with pytest.raises(ValueError, match="not a run uid"):
            processes.state(uid)
