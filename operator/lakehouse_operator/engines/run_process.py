"""At most one child process per run, followed without waiting and found again after an operator restart.

Each run (by uid: a run created again under its old name is a new run) gets a directory under `root`:

    lock          held (flock) by the process and every child it starts, for as long as any of them lives
    started-at    when the process was started (epoch seconds): timeouts hold across operator restarts
    pid           the process group, written by the wrapper before the command starts
    stdout, stderr
    exit-status   written by the wrapper when the command ends

Whether a run's process lives is read from its lock, not from a pid: an orphan of an operator that died is
no child of this one (it cannot be waited for), and a pid can be reused. The lock is free only once every
process that inherited it has ended, so a second process is never started while anything of the first
one can still commit. The exit status is written by a shell around the command, so it outlives the
operator as well.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

# $0 is the run's directory; the rest is the command. Not `exec`: the shell stays to write the status.
WRAPPER = 'echo $$ > "$0/pid"; "$@"; echo $? > "$0/exit-status.tmp"; mv "$0/exit-status.tmp" "$0/exit-status"'
OUTPUT_TAIL_BYTES = 64 * 1024


@dataclass(frozen=True)
class Running:
    started_at: float  # epoch seconds


@dataclass(frozen=True)
class Ended:
    # None: the process ended without one (stopped together with its wrapper, or the machine stopped).
    exit_status: int | None
    stdout: str  # the last OUTPUT_TAIL_BYTES of each
    stderr: str


class RunProcesses:
    def __init__(self, root: Path, keep_seconds: float) -> None:
        self._root = root
        # Directories of ended processes nobody asked about (their run was deleted) go after this long.
        self._keep_seconds = keep_seconds
        self._lock = threading.Lock()
        self._children: dict[str, subprocess.Popen[bytes]] = {}  # started here: reaped when they end

    def state(self, uid: str) -> Running | Ended | None:
        """The run's process; None when it has none (never started, or forgotten)."""
        with self._lock:
            self._reap()
            return self._state(uid)

    def start(self, uid: str, command: list[str], env: dict[str, str]) -> Running | Ended:
        """Starts the command for the run, unless a process holds the run already: then that one's state."""
        with self._lock:
            self._reap()
            self._prune(keep=uid)
            directory = self._directory(uid)
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            lock = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return self._state(uid) or Running(time.time())
                for leftover in ("pid", "exit-status", "stdout", "stderr"):
                    (directory / leftover).unlink(missing_ok=True)
                started_at = time.time()
                (directory / "started-at").write_text(f"{started_at}\n")
                with (directory / "stdout").open("wb") as stdout, (directory / "stderr").open("wb") as stderr:
                    self._children[uid] = subprocess.Popen(
                        ["/bin/sh", "-c", WRAPPER, str(directory), *command],
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=stdout,
                        stderr=stderr,
                        pass_fds=(lock,),  # the child's copy holds the lock once ours is closed
                        start_new_session=True,  # a group of its own: stopped as one, spared the operator's signals
                    )
                return Running(started_at)
            finally:
                os.close(lock)

    def stop(self, uid: str) -> None:
        """Kills the run's process group, if it still lives."""
        with self._lock:
            directory = self._directory(uid)
            pid = _read_number(directory / "pid")
            # The group id cannot be reused while a member holds the lock.
            if pid is not None and _lock_held(directory / "lock"):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(int(pid), signal.SIGKILL)

    def forget(self, uid: str) -> None:
        """Drops the run's directory once its result is used; the next `start` begins afresh."""
        with self._lock:
            shutil.rmtree(self._directory(uid), ignore_errors=True)
            self._reap()

    def _state(self, uid: str) -> Running | Ended | None:
        directory = self._directory(uid)
        if not directory.is_dir():
            return None
        if _lock_held(directory / "lock"):
            return Running(_read_number(directory / "started-at") or time.time())
        if not (directory / "pid").exists():
            return None  # the operator stopped between taking the lock and starting the command
        status = _read_number(directory / "exit-status")
        return Ended(
            exit_status=int(status) if status is not None else None,
            stdout=_tail(directory / "stdout"),
            stderr=_tail(directory / "stderr"),
        )

    def _reap(self) -> None:
        for uid, child in list(self._children.items()):
            if child.poll() is not None:
                del self._children[uid]

    def _prune(self, keep: str) -> None:
        if not self._root.is_dir():
            return
        for directory in self._root.iterdir():
            if directory.name == keep or not directory.is_dir() or _lock_held(directory / "lock"):
                continue
            started_at = _read_number(directory / "started-at") or directory.stat().st_mtime
            if time.time() - started_at > self._keep_seconds:
                shutil.rmtree(directory, ignore_errors=True)

    def _directory(self, uid: str) -> Path:
        if not uid or "/" in uid or uid.startswith("."):
            raise ValueError(f"not a run uid: {uid!r}")
        return self._root / uid


def _lock_held(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also releases the lock when this probe took it
    return False


def _read_number(path: Path) -> float | None:
    try:
        return float(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None  # missing, or the writer is in the middle of it


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as file:
            file.seek(max(0, file.seek(0, os.SEEK_END) - OUTPUT_TAIL_BYTES))
            return file.read().decode(errors="replace")
    except FileNotFoundError:
        return ""
