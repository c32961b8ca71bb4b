"""A one-line upload progress bar on stderr (no dependency: the CLI only needs httpx)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 30


def human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"


class ProgressBar:
    def __init__(self, label: str, stream: TextIO = sys.stderr) -> None:
        self.label = label
        self.stream = stream
        self.interactive = stream.isatty()
        self.started = time.monotonic()
        self._last_draw = 0.0

    def __call__(self, sent: int, total: int) -> None:
        now = time.monotonic()
        # Redrawing on every chunk would cost more than the upload on a fast link.
        if not self.interactive or (now - self._last_draw < 0.1 and sent < total):
            return
        self._last_draw = now
        done = int(WIDTH * sent / total) if total else WIDTH
        rate = sent / max(now - self.started, 1e-6)
        self.stream.write(
            f"\r{self.label} [{'#' * done}{'.' * (WIDTH - done)}] {100 * sent / max(total, 1):5.1f}% "
            f"{human_bytes(sent)} / {human_bytes(total)} {human_bytes(rate)}/s "
        )
        self.stream.flush()

    def finish(self, total: int) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        end = "\n" if self.interactive else ""
        self.stream.write(f"{end}{self.label}: sent {human_bytes(total)} in {elapsed:.1f}s "
                          f"({human_bytes(total / elapsed)}/s)\n")  # fmt: skip
        self.stream.flush()
